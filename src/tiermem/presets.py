"""Presets: a whole fit's choices under one name, tiermem's own or the M3-S reference code's.

``m3s`` (the default) is tiermem: every option at its documented default. ``m3s-reference``
makes the choices of the authors' public code (the ``modular-memorability`` repository), so a
figure can be compared with theirs; it resolves by dataset to ``m3s-reference-memento10k`` or
``m3s-reference-videomem`` (a dataset whose name says VideoMem gets the VideoMem settings,
any other Memento10k's). `tiermem train` and `ablate` apply its head settings, `tiermem fit`
all of it. Options given explicitly (other than their defaults) still win.

Each choice of the reference preset, with its source in that repository (read from its
public code, not copied):

- Head: MLP [512, 64], Mish, sigmoid, no dropout, one net; Adam, 20 epochs, batch 32
  (``model/m3s.py``, ``config.py``).
- Memento10k: Adam lr 1e-3, weight decay 1e-5, StepLR(5, 0.2); tail-penalised MSE with
  weights ``1 + 2·|m − 0.80099|⁴`` normalised by their batch mean (``loss.py``, ``config.py``).
- VideoMem: Adam lr 4.06e-4, weight decay 1.12e-5, StepLR(8, 0.285); MSE → Spearman, where
  the Spearman term is ``−ρ/100`` on torchsort's l2 soft ranks (strength 1) of predictions
  *and* targets (``loss.py``, ``config.py``). Here: ``rank="permutahedron"``,
  ``target_rank="soft"``, ``weight=0.01`` (the same gradients; the loss differs by a constant).
- Normalisation: z-scores for the low-level block only (and similarity features, which this
  preset does not use); backbone embeddings and cluster one-hots go in raw (``train.py``).
- Distinctiveness: DBSCAN on *both* the mid and the high block: PCA to 10 whitened, not
  standardised, t-SNE to 3 (random init, lr 200, perplexity 30), DBSCAN eps 1.25 (mid) and
  0.9 (high), min_samples 5, an MLP(100) assigning new videos (``gen_features.py``).
  **Known bug, reproduced for parity**: ``np.eye(k + 1)[label]`` marks DBSCAN noise (label
  -1) in the last cluster's column (``noise_column="last-cluster"``); ``m3s`` gives noise a
  column of its own.
- Low tier: HOG of the RGB frame, PCA(10, whitened) fitted on the first frame of each
  training video, temporal means only, the paper's features only (``gen_features.py``;
  ``USE_TEMPORAL_STD = False`` in the published runs).

Not reproduced, and why: the reference reports the best epoch on the split it reports on;
tiermem always picks epochs on the training videos and shows the paper protocol's figure
beside it (`tiermem.model.protocols`). Its optical flow comes from a script it does not
publish, and its brightness (``hsv[0].mean()``: the first pixel row) and blurriness constants
are inconsistent with the paper, so tiermem's low tier keeps its own definitions there
(`tiermem.tiers.low`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiermem.errors import TiermemError
from tiermem.registry import Registry

#: Tiers the reference runs DBSCAN distinctiveness on, with each one's fixed eps.
REFERENCE_DBSCAN_EPS = {"mid": 1.25, "high": 0.9}


@dataclass(frozen=True)
class Preset:
    """What a preset sets: head options (`tiermem.model.options.HeadOptions` fields) and, for a
    fit on videos, tier options, distinctiveness and its sources (those among the fit's tiers)."""

    name: str
    summary: str
    head: dict[str, Any] = field(default_factory=dict)
    tier_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    distinct: list[str] = field(default_factory=list)
    distinct_sources: list[str] = field(default_factory=list)
    distinct_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def pipeline_config(self, tiers: list[str]) -> dict[str, Any]:
        """The `PipelineConfig` fields this preset sets for a fit on `tiers`."""
        if not self.distinct and not self.tier_config:
            return {}
        sources = [s for s in self.distinct_sources if s in tiers]
        config: dict[str, Any] = {"tier_config": {t: dict(c) for t, c in self.tier_config.items() if t in tiers}}
        if self.distinct and sources:
            config.update(distinct=list(self.distinct), distinct_source=",".join(sources),
                          distinct_params={k: dict(v) for k, v in self.distinct_params.items()})
        return config


_REFERENCE_COMMON: dict[str, Any] = {
    "head": "m3s", "hidden": (512, 64), "dropout": 0.0, "ensemble": 1, "epochs": 20, "batch_size": 32,
    "standardise": ["low"],
}
_REFERENCE_PIPELINE: dict[str, Any] = {
    "tier_config": {"low": {"hog_colour": True, "pca_whiten": True, "pca_frames_per_clip": 1,
                            "temporal_std": False, "extras": False, "pca_components": 10}},
    "distinct": ["dbscan"],
    "distinct_sources": ["mid", "high"],
    "distinct_params": {
        "dbscan": {"n_components": 10, "standardize": False, "whiten": True, "tsne_components": 3,
                   "tsne_init": "random", "tsne_learning_rate": 200.0, "perplexity": 30.0, "min_samples": 5,
                   "hidden_layer_sizes": [100], "noise_column": "last-cluster"},
        **{f"dbscan@{tier}": {"eps": eps} for tier, eps in REFERENCE_DBSCAN_EPS.items()},
    },
}

_PRESETS: Registry[Preset] = Registry("preset")
#: Register a preset under its own name (``register_preset(Preset("mine", ...))``).
register_preset = _PRESETS.decorator(lambda preset: preset.name)

for _preset in (
    Preset("m3s", "tiermem's own choices (the default)"),
    Preset(
        "m3s-reference-memento10k", "the M3-S reference code's choices, Memento10k settings",
        head={**_REFERENCE_COMMON, "lr": 1e-3, "weight_decay": 1e-5, "step_size": 5, "gamma": 0.2,
              "loss": "mse_tails", "loss_params": {"c": 2.0, "p": 4.0, "centre": 0.80099}},
        **_REFERENCE_PIPELINE,
    ),
    Preset(
        "m3s-reference-videomem", "the M3-S reference code's choices, VideoMem settings",
        head={**_REFERENCE_COMMON, "lr": 4.06e-4, "weight_decay": 1.12e-5, "step_size": 8, "gamma": 0.285,
              "loss": "mse_to_spearman",
              "loss_params": {"rank": "permutahedron", "strength": 1.0, "target_rank": "soft", "weight": 0.01}},
        **_REFERENCE_PIPELINE,
    ),
):
    register_preset(_preset)
#: Names that stand for one preset per dataset.
_BY_DATASET = {"m3s-reference": ("m3s-reference-memento10k", "m3s-reference-videomem")}


def list_presets() -> list[str]:
    """Every preset name `get_preset` takes."""
    return sorted([*_PRESETS.names(), *_BY_DATASET])


def get_preset(name: str, dataset: str | None = None) -> Preset:
    """The preset `name`; ``m3s-reference`` resolves by `dataset` (VideoMem's settings when its
    name says videomem, else Memento10k's)."""
    if name in _BY_DATASET:
        memento, videomem = _BY_DATASET[name]
        name = videomem if dataset is not None and "videomem" in dataset.lower() else memento
    if name not in _PRESETS:
        raise TiermemError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    return _PRESETS.get(name)


__all__ = ["Preset", "REFERENCE_DBSCAN_EPS", "get_preset", "list_presets", "register_preset"]

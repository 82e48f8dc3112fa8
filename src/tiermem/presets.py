"""Presets: a whole fit's choices under one name, tiermem's own or the M3-S reference code's.

``m3s`` (the default) is tiermem: every option at its documented default. ``m3s-reference``
makes the choices of the authors' public code (github.com/theodumont/modular-memorability,
read at commit dde778c; its code files are those of 3c9182c) so a figure can be compared with
theirs. It resolves by dataset to ``m3s-reference-memento10k`` or ``m3s-reference-videomem``
(a dataset, or for `tiermem train` a labels path, whose name says videomem gets VideoMem's
settings; anything else Memento10k's). `train` and `ablate` apply its head settings, `fit` all
of it. Options given explicitly (other than their defaults) still win.

Each choice, with where the reference makes it (file:line), implemented here from the
definitions:

- Head: in → 512 → 64 → 1, Mish after each hidden layer, sigmoid, no dropout, one net
  (model/m3s.py:30-48); Adam, StepLR stepped once per epoch, 20 epochs, batch 32, shuffled
  (train.py:175, 214-215, 386; config.py:75-86).
- Memento10k: the released command (README.md:72): loss ``mse``, lr 1e-3, weight decay 1e-5,
  StepLR(5, 0.2).
- VideoMem: the released command (README.md:73): loss ``mse_to_spearman``, lr 4.0574e-4,
  weight decay 1.1226e-5, StepLR(8, 0.28521). α = epoch / (epochs − 1) (train.py:282).
- Spearman term: ``−ρ/100`` (loss.py:75), ρ the Pearson correlation of torchsort's
  ``soft_rank`` of predictions *and* targets at its defaults, l2 and strength 1 (loss.py:61-70).
  Here: ``rank="permutahedron"``, ``strength=1``, ``target_rank="soft"``, ``weight=0.01``
  (the same gradients; the loss differs by a constant). On scores in [0, 1] at strength 1
  the soft ranks are affine in the scores, so this term is Pearson correlation.
- Tail MSE, when ``--loss mse_tails`` is chosen under this preset: weights
  ``1 + 2·|m − 0.80099205|⁴`` (the Memento10k mean), normalised by their batch mean, times the
  squared error (loss.py:35-47, config.py:78-79, 96). The released commands do not use it.
- Normalisation: the 15 low-level features are z-scored (dataset.py:54, 130-131); the
  reference hard-codes its constants (config.py:134-159), tiermem takes the training videos'.
  HRNet/CSN embeddings go in raw (dataset.py:134-152) and so do the DBSCAN one-hots (their
  normalisation constants are mean 0, std 1: config.py:169, 191).
- Distinctiveness: DBSCAN on the mid (HRNet) and the high (ip-CSN) features
  (config.py:67-68): PCA to 10, whitened, on the raw training embeddings
  (gen_features.py:399-402, 602-605); t-SNE to 3 with scikit-learn 0.24's defaults, random
  init, lr 200, perplexity 30 (gen_features.py:460-461); DBSCAN eps 1.25 (HRNet), 0.9 (CSN),
  min_samples 5 (config.py:43-44, gen_features.py:465-467); an MLP(100) trained on the
  whitened PCA scores, noise a class of its own, assigns new videos (gen_features.py:479).
- Low tier: HOG of the RGB frame (skimage, multichannel: gen_features.py:130), PCA(10,
  whitened) fitted on the first frame of each training video (gen_features.py:104-123), the
  paper's features only (config.py:55) and temporal means only (config.py:58,
  dataset.py:121-122): 15 features.

Known bugs of the reference:
- **Reproduced for parity**, labelled: the one-hot ``np.eye(k + 1)[label]`` with k the
  largest cluster label (gen_features.py:482, 490) marks noise (label -1) in the last
  cluster's column, so noise and that cluster collide (``noise_column="last-cluster"``).
  ``m3s`` gives noise a column of its own.
- Not reproduced: the script's ``__main__`` computes the HRNet clusters twice and never the
  CSN ones (gen_features.py:707-708, the loop variable unused), while the model expects both;
  the released commands repeat ``--similarity_methods`` where ``--similarity_features`` was
  meant (README.md:72-73), which would stop the run; the brightness is ``hsv[0].mean()``, the
  first pixel row rather than the V channel (gen_features.py:142-145); meanOF is written as 0
  except on LaMem (gen_features.py:253-266). Tiermem's low tier keeps its own definitions
  there (`tiermem.tiers.low`).
- Reporting: the reference logs the best validation Spearman over the 20 epochs
  (train.py:353-360, 379) on the split it reports. Tiermem picks epochs on the training
  videos and shows that protocol's figure beside its own (`tiermem.model.protocols`).
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
    loss_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # loss -> its parameters here
    tier_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    distinct: list[str] = field(default_factory=list)
    distinct_sources: list[str] = field(default_factory=list)
    distinct_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def pipeline_config(self, tiers: list[str], given: dict[str, Any]) -> dict[str, Any]:
        """`PipelineConfig` fields for a fit on `tiers`: `given` (the caller's) with this preset's
        tier options under the given ones, and its distinctiveness unless `given` names any."""
        config = dict(given)
        ours = {t: c for t, c in self.tier_config.items() if t in tiers}
        if ours:
            theirs = given.get("tier_config", {})
            config["tier_config"] = {t: {**ours.get(t, {}), **theirs.get(t, {})} for t in {*ours, *theirs}}
        sources = [s for s in self.distinct_sources if s in tiers]
        if self.distinct and sources and not given.get("distinct"):
            config["distinct"] = list(self.distinct)
            config.setdefault("distinct_source", ",".join(sources))
            config.setdefault("distinct_params", {k: dict(v) for k, v in self.distinct_params.items()})
        return config


_REFERENCE_COMMON: dict[str, Any] = {
    "head": "m3s",
    "hidden": (512, 64),
    "dropout": 0.0,
    "ensemble": 1,
    "epochs": 20,
    "batch_size": 32,
    "standardise": ["low"],
}
_REFERENCE_LOSSES: dict[str, dict[str, Any]] = {
    "mse_tails": {"c": 2.0, "p": 4.0, "centre": 0.80099205},
    **{
        loss: {"rank": "permutahedron", "strength": 1.0, "target_rank": "soft", "weight": 0.01}
        for loss in ("spearman", "mse_to_spearman")
    },
}
_REFERENCE_PIPELINE: dict[str, Any] = {
    "loss_defaults": _REFERENCE_LOSSES,
    "tier_config": {
        "low": {
            "hog_colour": True,
            "pca_whiten": True,
            "pca_frames_per_clip": 1,
            "temporal_std": False,
            "extras": False,
            "pca_components": 10,
        }
    },
    "distinct": ["dbscan"],
    "distinct_sources": ["mid", "high"],
    "distinct_params": {
        "dbscan": {
            "n_components": 10,
            "standardize": False,
            "whiten": True,
            "tsne_components": 3,
            "tsne_init": "random",
            "tsne_learning_rate": 200.0,
            "perplexity": 30.0,
            "min_samples": 5,
            "hidden_layer_sizes": [100],
            "noise_column": "last-cluster",
        },
        **{f"dbscan@{tier}": {"eps": eps} for tier, eps in REFERENCE_DBSCAN_EPS.items()},
    },
}

_PRESETS: Registry[Preset] = Registry("preset")
#: Register a preset under its own name (``register_preset(Preset("mine", ...))``).
register_preset = _PRESETS.decorator()

for _preset in (
    Preset("m3s", "tiermem's own choices (the default)"),
    Preset(
        "m3s-reference-memento10k",
        "the M3-S reference code's choices, Memento10k settings",
        head={
            **_REFERENCE_COMMON,
            "lr": 1e-3,
            "weight_decay": 1e-5,
            "step_size": 5,
            "gamma": 0.2,
            "loss": "mse",
        },
        **_REFERENCE_PIPELINE,
    ),
    Preset(
        "m3s-reference-videomem",
        "the M3-S reference code's choices, VideoMem settings",
        head={
            **_REFERENCE_COMMON,
            "lr": 0.0004057400860408805,
            "weight_decay": 1.1226272823355355e-05,
            "step_size": 8,
            "gamma": 0.2852061798531863,
            "loss": "mse_to_spearman",
        },
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

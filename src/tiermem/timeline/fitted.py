"""A fitted pipeline's side of a timeline: its tiers with their fitted state, and the head's
scores, percentiles and Shapley contributions for windows instead of stored clips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tiermem.artifact import DISTINCT_BLOCK
from tiermem.errors import DataMismatchError, TiermemError
from tiermem.features import frame_tiers
from tiermem.run import Run
from tiermem.store import FeatureStore
from tiermem.tiers.base import Tier
from tiermem.video.stream import declared_duration

if TYPE_CHECKING:
    from tiermem.pipeline import Pipeline


def median_duration(paths: list[Path], limit: int = 200) -> float | None:
    """Median declared duration (seconds) of up to `limit` evenly spread videos of `paths`."""
    picked = [paths[i] for i in np.unique(np.linspace(0, len(paths) - 1, min(limit, len(paths))).round().astype(int))] if paths else []
    durations = [d for p in picked if (d := declared_duration(p))]
    return round(float(np.median(durations)), 3) if durations else None


def fitted_tiers(pipe: "Pipeline", run: Run) -> dict[str, Tier]:
    """The frame tiers with their fitted state, built once per pipeline; their networks on `run`'s device."""
    if getattr(pipe, "_tiers", None) is None:
        from tiermem.tiers import get_tier

        tiers = {}
        for name in frame_tiers(pipe.config.tiers):
            tier = get_tier(name, **pipe.config.tier_config.get(name, {}))
            if tier.requires_fit:
                saved = FeatureStore(pipe.state_dir).load_state(name)
                if saved is None:
                    raise TiermemError(f"model {pipe.name}: no fitted state for the {name} tier in {pipe.state_dir}")
                tier.load_state_dict(saved.state)
            tiers[name] = tier
        pipe._tiers = tiers
    device = run.device_for(pipe._tiers.values())
    for tier in pipe._tiers.values():
        if tier.uses_device:
            tier.on(device)
    return pipe._tiers


def window_scorer(pipe: "Pipeline", path: Path, captions: dict[str, list[str]] | None, run: Run) -> Callable[[dict[str, np.ndarray]], pd.DataFrame]:
    """`score_windows` for windows of the video at `path`, its captions embedded once (text tier)."""
    text = None
    if "text" in pipe.config.tiers:
        from tiermem.tiers import get_tier

        caps = pipe._captions([path.stem], captions)[path.stem]
        text = get_tier("text", **pipe.config.tier_config.get("text", {})).on(run.network_device).transform_texts([caps])
    return lambda values: score_windows(pipe, values, text)


def score_windows(pipe: "Pipeline", values: dict[str, np.ndarray], text: np.ndarray | None) -> pd.DataFrame:
    """Scores, percentiles and Shapley contributions of windows' tier features."""
    n = len(next(iter(values.values())))
    parts = []
    for block in pipe.layout_:
        if block.name == DISTINCT_BLOCK:
            continue
        part = values[block.name] if block.name in values else np.repeat(np.asarray(text, np.float32), n, axis=0)
        if part.shape[1] != len(block.feature_names):
            raise DataMismatchError(f"model {pipe.name}: the {block.name} tier gives {part.shape[1]} features, the head expects {len(block.feature_names)}")
        parts.append(part)
    X = np.hstack(parts).astype(np.float32)
    if pipe.distinct_:
        names = [b.name for b in pipe.layout_]
        offsets = np.cumsum([0] + [len(b.feature_names) for b in pipe.layout_])
        cols = {name: slice(offsets[j], offsets[j + 1]) for j, name in enumerate(names)}
        X = np.hstack([X, *[est.transform(X[:, cols[est.source]]) for est in pipe.distinct_]]).astype(np.float32)
    shap = pipe.explain(X)
    table = pd.DataFrame({"score": shap.scores, "percentile": pipe.percentile(shap.scores)})
    for j, name in enumerate(shap.tier_names):
        table[f"contrib_{name}"] = shap.values[:, j]
    return table

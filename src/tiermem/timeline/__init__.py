"""Memorability over time: windows over a long video, each scored as a clip, from one pass.

    >>> model = tiermem.load(model_dir)                 # a directory written by `tiermem fit`
    >>> pred = model.predict(video, timeline=True, window=1.0, stride=0.5)   # or: tiermem predict --timeline
    >>> tl = pred.timelines[video.stem]
    >>> tl.table.columns.tolist()[:4], len(tl.table)
    (['start', 'end', 'score', 'percentile'], 5)
    >>> [key for key in ("mean", "peak", "trough", "hook", "share_above_median") if key in tl.summary]
    ['mean', 'peak', 'trough', 'hook', 'share_above_median']

`windows` plans the windows and scans the video; `result` holds the `Timeline`. Models call
`predict_with_timelines`, which scores long videos window by window and the others as clips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiermem.errors import VideoDecodeError
from tiermem.extraction.timelines import window_features
from tiermem.extraction.windows import WindowFeatures, WindowPlan, check_seconds, default_stride
from tiermem.predictions import Predictions
from tiermem.run import Run
from tiermem.tiers.base import Tier
from tiermem.timeline.result import Timeline, changes, sparkline
from tiermem.video.stream import declared_duration

#: Videos longer than this many windows get a timeline unless told otherwise.
LONG_VIDEO_WINDOWS = 1.5


def wants_timeline(
    paths: Sequence[Path], timeline: bool | None, length: float, windows_given: bool = False
) -> list[bool]:
    """Per video: a timeline when asked (`timeline`, or a window or stride given: windows were
    asked for), else by default when it is longer than 1.5 windows."""
    if timeline is not None or windows_given:
        return [True if timeline is None else bool(timeline)] * len(paths)
    return [(d := declared_duration(p)) is not None and d > LONG_VIDEO_WINDOWS * length for p in paths]


def build_timeline(
    path: Path,
    *,
    tiers: dict[str, Tier],
    decode: dict[str, Any],
    length: float,
    stride: float | None,
    length_given: bool,
    score: Callable[[WindowFeatures], pd.DataFrame],
    training_median: float | None,
    run: Run,
    store: str | None = None,
) -> Timeline:
    """Scan `path` and score its windows with `score` (scores, percentiles, contributions).

    The windows are scanned by `run`'s workers (`tiermem.extraction.timelines`), which read
    the tiers' fitted state from `store`. A window or stride the caller chose must fit in the
    video; the default window does not have to (a shorter video is one window).
    """
    declared = declared_duration(path)
    check_seconds("window", length, declared if length_given else None, str(path))
    if stride is not None:
        check_seconds("stride", stride, declared, str(path))
    plan = WindowPlan(
        length,
        stride if stride is not None else default_stride(length, decode["frames"], tiers),
        decode["frames"],
    )
    total = max(declared or 0.0, 1.0)
    stage = f"timeline {path.name}"
    features = window_features(
        path,
        tiers,
        plan,
        size=decode["size"],
        mode=decode["mode"],
        run=run,
        store=store,
        declared=declared,
        on_seconds=lambda seconds: run.progress(stage, seconds, total, unit="s"),
    )
    table = pd.DataFrame({"start": features.starts.round(3), "end": features.ends.round(3)})
    if len(features.starts):
        table = pd.concat([table, score(features).reset_index(drop=True)], axis=1)
    else:
        table["score"] = np.zeros(0)
    table["changes"] = changes(features.facts, features.starts)
    return Timeline(
        video_id=path.stem,
        path=str(path),
        table=table,
        facts=features.facts,
        duration=features.duration,
        length=length if not features.note else float(features.ends[0]),
        stride=plan.stride,
        training_median=training_median,
        note=features.note,
        failed=features.broken.cause if features.broken is not None else None,
    )


def predict_with_timelines(
    paths: Sequence[Path],
    use: Sequence[bool],
    *,
    clips: Callable[[list[Path]], Predictions],
    timeline: Callable[[Path], Timeline],
    percentile: Callable[[np.ndarray], np.ndarray] | None,
) -> Predictions:
    """Score `paths`: those marked in `use` as timelines, the others as clips, in input order.

    A timeline's row holds its mean score, its percentile and its mean contributions (exact
    Shapley values average like the scores they add up to). A stream that broke keeps its
    windows and is also listed in `failed`.
    """
    clip_paths = [p for p, u in zip(paths, use) if not u]
    pred = clips(clip_paths) if clip_paths else Predictions.empty([])
    rows, contributions, facts = [], [], []
    timelines: dict[str, Timeline] = {}
    failed = list(pred.failed)
    for path in (p for p, u in zip(paths, use) if u):
        try:
            tl = timeline(path)
        except VideoDecodeError as exc:
            failed.append((str(path), exc.cause))
            continue
        if tl.failed:
            failed.append((str(path), tl.failed))
        if tl.table.empty:
            continue
        timelines[tl.video_id] = tl
        contrib = {
            c[len("contrib_") :]: float(tl.table[c].mean()) for c in tl.table if c.startswith("contrib_")
        }
        rows.append(
            {
                "video_id": tl.video_id,
                "path": tl.path,
                "score": float(tl.scores.mean()),
                **{f"contrib_{k}": v for k, v in contrib.items()},
            }
        )
        contributions.append(contrib)
        facts.append({})
    if not rows:
        return Predictions(
            pred.table, pred.contributions, pred.facts, pred.base_score, failed, pred.zero_shot
        )
    extra = pd.DataFrame(rows)
    if percentile is not None:
        extra.insert(3, "percentile", percentile(extra["score"].to_numpy(dtype=np.float64)))
    table = pd.concat([pred.table, extra], ignore_index=True) if not pred.table.empty else extra
    order = {str(p): i for i, p in enumerate(paths)}
    ranks = np.argsort([order.get(str(p), len(order)) for p in table["path"]], kind="stable")
    all_contrib = (pred.contributions or [{} for _ in range(len(pred.table))]) + contributions
    all_facts = (pred.facts or [{} for _ in range(len(pred.table))]) + facts
    return Predictions(
        table.iloc[ranks].reset_index(drop=True),
        [all_contrib[i] for i in ranks],
        [all_facts[i] for i in ranks],
        pred.base_score,
        failed,
        pred.zero_shot,
        timelines,
    )


__all__ = [
    "LONG_VIDEO_WINDOWS",
    "Timeline",
    "WindowFeatures",
    "WindowPlan",
    "build_timeline",
    "declared_duration",
    "predict_with_timelines",
    "sparkline",
    "wants_timeline",
]

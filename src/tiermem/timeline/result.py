"""A video's memorability over time: the window table, what changed, and the summary people read.

    start, end  seconds of the window
    score       predicted memorability of the window as a clip
    percentile  among the model's training predictions (fitted models)
    contrib_*   each block's exact Shapley contribution (fitted models)
    changes     what is new against the previous window: a cut, faces appearing or leaving,
                a new main object

The summary: mean, peak and trough (score and window), the hook (the opening window, which
advertisers care most about) and the share of time above the model's training median.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SPARK = "▁▂▃▄▅▆▇█"


@dataclass
class Timeline:
    """Per-window scores of one video, with the facts behind them and a summary."""

    video_id: str
    path: str
    table: pd.DataFrame
    facts: list[dict[str, Any]]
    duration: float
    length: float  # window length, seconds
    stride: float
    training_median: float | None = None  # the model's median prediction on its training videos
    note: str = ""
    failed: str | None = None  # why decoding stopped early; the windows before it stand
    summary: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarise(self)

    @property
    def scores(self) -> np.ndarray:
        return self.table["score"].to_numpy(dtype=np.float64)

    def sparkline(self, width: int = 60) -> str:
        """The curve in one line of block characters, scaled from its trough to its peak."""
        return sparkline(self.scores, width)

    def records(self) -> dict[str, Any]:
        """JSON-able: the summary, the windows (with their contributions and facts) and notes."""
        windows = []
        for i, row in enumerate(self.table.to_dict(orient="records")):
            rec = {k: v for k, v in row.items() if not str(k).startswith("contrib_")}
            contrib = {k[len("contrib_") :]: v for k, v in row.items() if str(k).startswith("contrib_")}
            if contrib:
                rec["contributions"] = contrib
            rec["facts"] = self.facts[i]
            windows.append(rec)
        return {"summary": self.summary, "windows": windows, "note": self.note, "failed": self.failed}


def sparkline(values: np.ndarray, width: int = 60) -> str:
    if not len(values):
        return ""
    if len(values) > width:  # average neighbouring windows down to `width` characters
        values = np.array([chunk.mean() for chunk in np.array_split(values, width)])
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        return SPARK[len(SPARK) // 2] * len(values)
    idx = np.round((values - lo) / (hi - lo) * (len(SPARK) - 1)).astype(int)
    return "".join(SPARK[i] for i in idx)


def summarise(timeline: Timeline) -> dict[str, Any]:
    table = timeline.table
    out: dict[str, Any] = {
        "windows": len(table),
        "window_s": round(timeline.length, 3),
        "stride_s": round(timeline.stride, 3),
        "duration_s": round(timeline.duration, 3),
    }
    if table.empty:
        return out
    scores = table["score"].to_numpy(dtype=np.float64)

    def at(i: int) -> dict[str, float]:
        return {
            "score": float(scores[i]),
            "start": float(table["start"].iloc[i]),
            "end": float(table["end"].iloc[i]),
        }

    out.update(
        mean=float(scores.mean()),
        peak=at(int(np.argmax(scores))),
        trough=at(int(np.argmin(scores))),
        hook=at(0),
        covered_s=[float(table["start"].iloc[0]), float(table["end"].iloc[-1])],
    )
    if timeline.training_median is not None:
        out["training_median"] = timeline.training_median
        out["share_above_median"] = float(np.mean(scores > timeline.training_median))
    return out


def changes(facts: list[dict[str, Any]], starts: np.ndarray) -> list[str]:
    """Per window, what differs from the window before: new cuts, faces, the main object."""
    out: list[str] = []
    seen_cuts: set[float] = set()
    for i, window in enumerate(facts):
        said: list[str] = []
        for t in window.get("low", {}).get("cuts_at", []):
            at = round(float(starts[i] + t), 1)
            if at not in seen_cuts:
                seen_cuts.add(at)
                said.append(f"cut at {at:g} s")
        if i:
            before, now = facts[i - 1].get("mid", {}), window.get("mid", {})
            if "faces_max" in now and "faces_max" in before:
                if now["faces_max"] and not before["faces_max"]:
                    said.append("faces appear")
                elif before["faces_max"] and not now["faces_max"]:
                    said.append("faces leave")
            top_now, top_before = _top_label(now), _top_label(before)
            if top_now and top_before and top_now != top_before:
                said.append(f"new: {top_now}")
        out.append("; ".join(said))
    return out


def no_changes(tl: Timeline) -> str:
    """Why a timeline lists no change between windows: none happened, or its tiers track none."""
    if any("low" in f or "mid" in f for f in tl.facts):
        return "No cut, face or new main object between windows."
    tiers = ", ".join(sorted({t for f in tl.facts for t in f})) or "none with facts"
    return (
        f"Changes between windows are not tracked: this model's tiers ({tiers}) record no cuts, faces or "
        "objects (the low and mid tiers do)."
    )


def _top_label(mid_facts: dict[str, Any]) -> str | None:
    top = mid_facts.get("imagenet_top5")
    return str(top[0]["label"]) if top else None


__all__ = ["Timeline", "changes", "no_changes", "sparkline", "summarise"]

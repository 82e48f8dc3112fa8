"""What scoring videos returns: one table plus each video's explanation and facts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

PREDICTION_COLUMNS = ["video_id", "path", "score", "percentile"]


@dataclass
class Predictions:
    """Scores of videos with their explanations; `table` is what `--json`/CSV output shows.

    `table` columns: video_id, path, score, percentile, then ``contrib_<block>`` (each block's
    exact Shapley contribution) for a fitted model. `failed` lists (path, reason) of files
    that could not be scored; the others still are. `timelines` holds, by video_id, the
    `tiermem.timeline.Timeline` of each video scored window by window; its row in `table` is
    the mean over its windows.
    """

    table: pd.DataFrame
    contributions: list[dict[str, float]]
    facts: list[dict[str, Any]]
    base_score: float | None
    failed: list[tuple[str, str]]
    zero_shot: bool = False
    timelines: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, failed: list[tuple[str, str]], zero_shot: bool = False) -> "Predictions":
        """No video could be scored."""
        return cls(pd.DataFrame(columns=PREDICTION_COLUMNS), [], [], None, failed, zero_shot)

    def rows(self) -> pd.DataFrame:
        """What a CSV holds: one row per video, or, for a video with a timeline, one per window
        (`start`, `end` and `changes` filled; empty for videos scored as one clip)."""
        if not self.timelines:
            return self.table
        parts = []
        for row in self.table.to_dict(orient="records"):
            tl = self.timelines.get(row["video_id"])
            if tl is None:
                parts.append(pd.DataFrame([row]))
                continue
            windows = tl.table.copy()
            windows.insert(0, "video_id", row["video_id"])
            windows.insert(1, "path", row["path"])
            parts.append(windows)
        table = pd.concat(parts, ignore_index=True)
        first = ["video_id", "path", "start", "end", "score", "percentile"]
        return table[[c for c in first if c in table] + [c for c in table if c not in first]]

    def records(self) -> list[dict[str, Any]]:
        """JSON-able, one dict per video."""
        out = []
        for i, row in enumerate(self.table.to_dict(orient="records")):
            rec = {k: v for k, v in row.items() if not str(k).startswith("contrib_")}
            rec["contributions"] = self.contributions[i] if self.contributions else {}
            rec["facts"] = self.facts[i] if self.facts else {}
            if rec["video_id"] in self.timelines:
                rec["timeline"] = self.timelines[rec["video_id"]].records()
            out.append(rec)
        return out


def rows_of_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    """`Predictions.rows` (what a CSV holds) from `Predictions.records` (what JSON holds), as a
    stored result keeps them: one row per video, or per window of a video with a timeline."""
    rows = []
    for rec in records:
        tl = rec.get("timeline")
        scored = [rec] if tl is None else tl["windows"]
        for part in scored:
            row = {"video_id": rec["video_id"], "path": rec["path"]}
            row.update((k, v) for k, v in part.items() if k not in ("contributions", "facts", "timeline"))
            row.update((f"contrib_{k}", v) for k, v in (part.get("contributions") or {}).items())
            rows.append(row)
    table = pd.DataFrame(rows)
    first = [c for c in ("video_id", "path", "start", "end", "score", "percentile") if c in table]
    contributions = [c for c in table if str(c).startswith("contrib_")]
    return table[first + contributions + [c for c in table if c not in first and c not in contributions]]


def jsonable(value: Any) -> Any:
    """`value` with numpy values made plain and NaN and infinities made None (strict JSON)."""
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = ["PREDICTION_COLUMNS", "Predictions", "jsonable", "rows_of_records"]

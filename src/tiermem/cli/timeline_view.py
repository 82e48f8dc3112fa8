"""A timeline in the terminal: the windows as a table, the curve as a sparkline, one summary line.

    print_timeline(model.timeline("advert.mp4"), console)

Shared by `tiermem predict --timeline` and `tiermem demo`; the HTML counterpart is
`tiermem.report.timeline`, and the timeline itself `tiermem.timeline`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tiermem.timeline.result import Timeline, no_changes

#: Above this many windows the table shows an even selection, always with the peak, the
#: trough, the hook and every window where something changed.
MAX_ROWS = 40
#: Block contributions shown per window (largest magnitude first).
TOP_CONTRIBUTIONS = 2


def print_timeline(tl: Timeline, console: Console, max_rows: int = MAX_ROWS, width: int = 60) -> None:
    """Print `tl`: a table of its windows, the sparkline with its trough and peak, the summary."""
    if tl.table.empty:
        console.print(
            Text(
                f"{tl.video_id}: no window could be scored" + (f" ({tl.failed})" if tl.failed else ""),
                style="yellow",
            )
        )
        return
    s = tl.summary
    console.print(
        Text(
            f"memorability over time: {tl.video_id} ({s['window_s']:g}-s windows every {s['stride_s']:g} s, "
            f"{s['duration_s']:.1f} s of video)",
            style="bold",
        )
    )
    console.print(timeline_table(tl, max_rows))
    if not any(bool(c) for c in tl.table.get("changes", [])):
        console.print(Text(no_changes(tl), style="dim"))
    console.print(sparkline_line(tl, width), highlight=False)
    console.print(summary_line(tl), highlight=False)
    for line in (
        tl.note,
        f"decoding stopped early: {tl.failed}; the windows before it stand" if tl.failed else "",
    ):
        if line:
            console.print(Text(line, style="yellow"))


def timeline_table(tl: Timeline, max_rows: int = MAX_ROWS) -> Table:
    """One row per window (or an even selection of them): start–end, score, percentile,
    the largest block contributions and what changed against the window before."""
    table = tl.table
    contrib_cols = [c for c in table.columns if str(c).startswith("contrib_")]
    has_pct = "percentile" in table.columns and table["percentile"].notna().any()
    rows = shown_rows(tl, max_rows)
    has_changes = "changes" in table.columns and any(bool(c) for c in table["changes"])
    caption = (
        f"{len(rows)} of {len(table)} windows shown: evenly spread, with the peak, the trough and every change"
        if len(rows) < len(table)
        else None
    )
    out = Table(caption=caption, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    out.add_column("window", justify="right", no_wrap=True)
    out.add_column("score", justify="right")
    if has_pct:
        out.add_column("pct", justify="right")
    if contrib_cols:
        out.add_column("top contributions", no_wrap=True)
    out.add_column("", no_wrap=True)  # peak / trough / hook
    if has_changes:
        out.add_column("changes", overflow="fold", min_width=16)
    peak, trough = int(np.argmax(tl.scores)), int(np.argmin(tl.scores))
    for i in rows:
        r = table.iloc[i]
        cells: list[Any] = [f"{r['start']:.1f}–{r['end']:.1f} s", f"{r['score']:.3f}"]
        if has_pct:
            cells.append("-" if r["percentile"] != r["percentile"] else f"{r['percentile']:.0f}")
        if contrib_cols:
            top = sorted(
                ((c[len("contrib_") :], float(r[c])) for c in contrib_cols), key=lambda kv: -abs(kv[1])
            )
            cells.append(", ".join(f"{k} {v:+.3f}" for k, v in top[:TOP_CONTRIBUTIONS]))
        marks = [m for m, j in (("peak", peak), ("trough", trough), ("hook", 0)) if i == j]
        cells.append(Text(" ".join(marks), style="green" if i == peak else "red" if i == trough else "cyan"))
        if has_changes:
            cells.append(Text(str(r.get("changes", "") or "")))
        out.add_row(*cells, style="bold" if i in (peak, trough) else None)
    return out


def shown_rows(tl: Timeline, max_rows: int = MAX_ROWS) -> list[int]:
    """All windows, or `max_rows` evenly spread ones plus the peak, trough, hook and changes."""
    n = len(tl.table)
    if n <= max_rows:
        return list(range(n))
    keep = set(np.linspace(0, n - 1, max_rows).round().astype(int).tolist())
    keep |= {0, int(np.argmax(tl.scores)), int(np.argmin(tl.scores))}
    if "changes" in tl.table:
        keep |= {i for i, c in enumerate(tl.table["changes"]) if c}
    return sorted(keep)


def sparkline_line(tl: Timeline, width: int = 60) -> Text:
    """'curve  0.0 s ▃▅█▁… 31.8 s   ▁ 0.695 (trough)  █ 0.882 (peak)'."""
    s = tl.summary
    lo, hi = s["trough"]["score"], s["peak"]["score"]
    start, end = s["covered_s"]
    line = Text("curve  ")
    line.append(f"{start:.1f} s ", style="dim")
    line.append(tl.sparkline(width), style="bold cyan")
    line.append(f" {end:.1f} s", style="dim")
    line.append(f"   ▁ {lo:.3f} (trough)  █ {hi:.3f} (peak)")
    if len(tl.table) > width:
        line.append(f"  (neighbouring windows averaged into {width} characters)", style="dim")
    return line


def summary_line(tl: Timeline) -> Text:
    """Mean, peak and trough (with their windows), the hook, and the share above the median."""
    s = tl.summary

    def at(key: str) -> str:
        w = s[key]
        return f"{w['score']:.3f} at {w['start']:.1f}–{w['end']:.1f} s"

    parts = [
        f"mean {s['mean']:.3f}",
        f"peak {at('peak')}",
        f"trough {at('trough')}",
        f"hook (opening window) {s['hook']['score']:.3f}",
    ]
    if "share_above_median" in s:
        parts.append(
            f"{100 * s['share_above_median']:.0f}% of windows above the training median "
            f"{s['training_median']:.3f}"
        )
    parts.append(f"{s['windows']} windows")
    return Text(" · ".join(parts))


__all__ = ["no_changes", "print_timeline", "shown_rows", "sparkline_line", "summary_line", "timeline_table"]

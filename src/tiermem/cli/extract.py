"""`tiermem extract` and `tiermem info`: features of many videos, metadata of one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from tiermem.cli.common import (
    app,
    console,
    err_console,
    extract_summary,
    in_range,
    print_failures,
    reports_errors,
    split_list,
    terminate_as_interrupt,
)
from tiermem.cli.options import (
    HIGH_NETWORK_HELP,
    MID_BACKBONE_HELP,
    TEXT_MODEL_HELP,
    WEIGHTS_HELP,
    tier_options,
    with_run_options,
)
from tiermem.errors import TiermemError
from tiermem.tiers import list_tiers

if TYPE_CHECKING:
    from tiermem.run import Run

#: Counts (frames, workers, videos per task, videos per flush) start at one.
AT_LEAST_ONE = in_range(1)


@app.command("extract")
@reports_errors
@with_run_options
def extract_command(
    paths: Optional[list[str]] = typer.Argument(
        None, help="Video files and/or directories (searched recursively for mp4, webm, mov, avi, mkv)."
    ),
    out: str = typer.Option(..., "--out", help="Feature store directory: one <tier>.parquet per tier."),
    tiers: list[str] = typer.Option(
        ["low"], "--tiers", help=f"Tiers to extract ({', '.join(list_tiers())}), comma-separated or repeated."
    ),
    frames: int = typer.Option(
        45, "--frames", callback=AT_LEAST_ONE, help="Frames sampled uniformly over each video."
    ),
    size: int = typer.Option(
        256,
        "--size",
        callback=in_range(16),
        help="Side of the square frames, in pixels (>= 16: HOG needs 2 x 2 cells of 8).",
    ),
    mode: str = typer.Option(
        "stretch", "--mode", help="Resize: stretch (as the paper) or crop (centre square)."
    ),
    batch_size: int = typer.Option(
        8,
        "--batch-size",
        callback=AT_LEAST_ONE,
        help="Videos per worker task; network tiers batch over them.",
    ),
    state: Optional[str] = typer.Option(
        None,
        "--state",
        help="Fitted tier state to reuse: a store directory (e.g. the --out of a run on the training split) or a <tier>.state.npz file.",
    ),
    fit_videos: int = typer.Option(
        200,
        "--fit-videos",
        callback=AT_LEAST_ONE,
        help="Videos a fitted tier (the low tier's HOG PCA) learns from, spread over the inputs; extracted first, the rest once it is fitted.",
    ),
    flush_every: int = typer.Option(
        64,
        "--flush-every",
        callback=AT_LEAST_ONE,
        help="Save the tables every N videos (and at least every 10 s).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
    captions: Optional[str] = typer.Option(
        None,
        "--captions",
        help="Captions CSV for the text tier (video_id + description_0.., description, caption or title); writes <out>/text.parquet.",
    ),
    weights: Optional[list[str]] = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    mid_backbone: Optional[str] = typer.Option(None, "--mid-backbone", help=MID_BACKBONE_HELP),
    text_model: Optional[str] = typer.Option(None, "--text-model", help=TEXT_MODEL_HELP),
    high_network: Optional[str] = typer.Option(None, "--high-network", help=HIGH_NETWORK_HELP),
    *,
    run: Run,
) -> None:
    """Extract tier features of many videos into Parquet tables; cached, resumable, parallel.

    Each video is decoded once and fed to every tier.
    Videos whose bytes and extraction settings are unchanged since the last run are skipped.
    A killed run resumes where it stopped (rows of a fitted tier are written once its fitting videos are in).
    Files that fail are listed with their reason at the end and make the exit code 1.

    Example: tiermem extract videos/ --tiers low --out features/ --workers 2
    (on a Ray cluster: --engine ray --ray-address auto --workers 16)
    """
    import json

    from tiermem.cli.progress import at_terminal
    from tiermem.extraction import extract

    names = split_list(tiers)
    if mode not in ("stretch", "crop"):
        raise TiermemError(f"--mode {mode!r}: use stretch or crop")
    config = tier_options(weights, mid_backbone, high_network, text_model)
    if "text" in names:  # the text tier reads captions, not pixels
        if not captions:
            raise TiermemError(
                "--tiers text needs --captions CSV (the text tier embeds captions, not video frames)"
            )
        from tiermem.cli.progress import StepBars
        from tiermem.tiers.text import embed_captions_table

        with StepBars(err_console) as bars:
            table = embed_captions_table(captions, out, on_progress=bars, **config.get("text", {}))
        err_console.print(f"text: {table}", highlight=False)
        names = [n for n in names if n != "text"]
        if not names:
            return
    elif captions:
        raise TiermemError("--captions is only read by the text tier (add --tiers text)")
    if not paths:
        raise TiermemError("no videos given (video tiers need video files or directories)")
    with terminate_as_interrupt(), at_terminal(run.but(batch=batch_size), err_console) as shown:
        report = extract(
            paths,
            tiers=names,
            out=out,
            frames=frames,
            size=size,
            mode=mode,
            state=state,
            fit_max_videos=fit_videos,
            flush_every=flush_every,
            tier_config=config,
            run=shown,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=1))
    else:
        console.print(extract_summary(report))
        print_failures(report.failed)
    if report.failed:
        raise typer.Exit(code=1)


@app.command("info")
@reports_errors
def info_command(
    video: str = typer.Argument(..., help="A video file."),
    as_json: bool = typer.Option(False, "--json", help="Print the metadata as JSON."),
) -> None:
    """Metadata of a video: duration, frame rate, size, codec, bitrate, audio (no full decode).

    Example: tiermem info clips/bikes_000.mp4 --json
    """
    import json

    from rich.table import Table

    from tiermem.video import probe

    meta = probe(video)
    if as_json:
        typer.echo(json.dumps(meta.to_dict(), indent=1))
        return
    table = Table(title=meta.path, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("duration", f"{meta.duration:.3f} s"),
        ("frame rate", f"{meta.fps:.3f} fps"),
        ("frames", str(meta.frame_count)),
        ("size", f"{meta.width} × {meta.height}"),
        ("codec", meta.codec),
        ("bitrate", f"{meta.bitrate / 1000:.1f} kb/s"),
        ("video stream", f"{meta.video_bytes_per_second / 1000:.1f} kB/s"),
        ("file size", f"{meta.file_size:,} bytes"),
        ("audio", "yes" if meta.has_audio else "no"),
    ]
    for field, value in rows:
        table.add_row(field, value)
    console.print(table)

"""`tiermem predict`: raw videos scored by a model (fitted, zero-shot or text), or feature tables
scored by a head."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from tiermem.cli.common import (
    app,
    console,
    err_console,
    in_range,
    print_failures,
    reports_errors,
    terminate_as_interrupt,
    to_json,
)
from tiermem.cli.options import with_run_options
from tiermem.cli.tables import BLOCK_HELP, load_blocks

if TYPE_CHECKING:
    from tiermem.run import Run


@app.command("predict")
@reports_errors
@with_run_options
def predict_command(
    videos: Optional[list[str]] = typer.Argument(None, help="Videos or folders to score (raw-video mode)."),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help="A `tiermem fit` artifact or a named model (`tiermem models`: zero-shot, memento10k-captions, videomem-titles) for videos, or a `tiermem train` head (tables) \\[default: zero-shot].",
    ),
    block: Optional[list[str]] = typer.Option(None, "--block", help=BLOCK_HELP),
    out: Optional[str] = typer.Option(None, "--out", help="CSV to write (video_id, score, ...), atomically."),
    ids: Optional[str] = typer.Option(
        None,
        "--ids",
        help="Table mode: CSV whose video_id column lists the videos to score \\[default: all in the first block].",
    ),
    captions: Optional[str] = typer.Option(
        None,
        "--captions",
        help="Captions CSV (video_id + caption columns): for models with the text tier, and for the text models (memento10k-captions, videomem-titles), which score videos by their captions alone.",
    ),
    cache: Optional[str] = typer.Option(
        None,
        "--cache",
        help="Feature store to reuse between runs \\[default: none; the features stay in memory].",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON on stdout."),
    timeline: Optional[bool] = typer.Option(
        None,
        "--timeline/--no-timeline",
        help="Score every window of each video \\[default: for videos longer than 1.5 windows].",
    ),
    window: Optional[float] = typer.Option(
        None,
        "--window",
        callback=in_range(0, low_open=True),
        help="Timeline window, seconds \\[default: the model's training clip length; zero-shot 3].",
    ),
    stride: Optional[float] = typer.Option(
        None,
        "--stride",
        callback=in_range(0, low_open=True),
        help="Seconds between window starts \\[default: about 1, snapped so windows share frames].",
    ),
    precision: Optional[str] = typer.Option(
        None,
        "--precision",
        help="Zero-shot only: fp32 (default, the same on every CPU) or bf16 (ResMem ~1.5x faster on CPUs with bfloat16, scores within ~2e-3).",
    ),
    reference: Optional[str] = typer.Option(
        None,
        "--reference",
        help="Zero-shot only: a predictions CSV (what --out writes) of videos that set the norm; percentiles are then against them, a single video's too.",
    ),
    heatmaps: Optional[str] = typer.Option(
        None,
        "--heatmaps",
        help="Folder for where-in-the-frame maps (occlusion against the image tiers) of each video's peak, trough and hook, or its middle: PNG overlays and JSON.",
    ),
    *,
    run: Run,
) -> None:
    """Score videos: raw files with a fitted pipeline (or zero-shot), or feature tables with a head.

    Raw videos get a score, its percentile among the training videos, each tier's exact Shapley
    contribution and the facts behind them; a file that fails is reported, the others still
    get scores (exit code 1).

    Long videos get a timeline: every window (the training clip length, about 1 s apart)
    scored as a clip from one streaming pass, with its contributions, what changed, and the
    peak, trough and opening ("hook") of the curve.

    Examples: tiermem predict clip.mp4 more_clips/ --model models/m10k;
    tiermem predict advert.mp4 --timeline --out advert_timeline.csv;
    tiermem predict clip.mp4 (zero-shot, ResMem prior);
    tiermem predict --model head/ --block coco=features.parquet --ids ids_test.csv --out predictions.csv
    """
    from tiermem.atomic import check_output_file
    from tiermem.errors import TiermemError
    from tiermem.runtime import set_threads

    set_threads()
    if out is not None:
        check_output_file(out)
    if heatmaps is not None:
        from tiermem.atomic import check_output_dir

        check_output_dir(heatmaps)
    if block:
        if model is None or out is None:
            raise TiermemError("table mode (--block) needs --model (a `tiermem train` head) and --out")
        frame_only = [
            name
            for name, value in (
                ("--timeline", timeline),
                ("--window", window),
                ("--stride", stride),
                ("--heatmaps", heatmaps),
                ("--captions", captions),
                ("--reference", reference),
                ("--precision", precision),
            )
            if value is not None
        ]
        if frame_only:
            raise TiermemError(f"{', '.join(frame_only)}: apply to videos, not to feature tables (--block)")
        _predict_tables(model, block, ids, out)
        return
    if not videos:
        raise TiermemError("give videos/folders to score, or --block tables with --model")
    options = {
        key: value for key, value in (("precision", precision), ("reference", reference)) if value is not None
    }
    _predict_videos(
        videos,
        model or "zero-shot",
        out,
        captions,
        cache,
        run,
        as_json,
        (timeline, window, stride),
        options,
        heatmaps,
    )


def _predict_tables(model: str, block: list[str], ids: Optional[str], out: str) -> None:
    import pandas as pd

    from tiermem.atomic import write_csv_atomic
    from tiermem.datasets.record import read_csv, require_columns
    from tiermem.errors import DatasetError
    from tiermem.model.base import load_head
    from tiermem.model.experiment import predict_on_blocks

    head = load_head(model)
    want = None
    if ids:
        table = read_csv(ids, dtype={"video_id": str})
        require_columns(table, ["video_id"], ids)
        if table.empty:
            raise DatasetError(f"{ids}: no rows, only a header: no video to score")
        want = table["video_id"].astype(str).to_numpy()
    vids, scores = predict_on_blocks(head, load_blocks(block), want)
    write_csv_atomic(pd.DataFrame({"video_id": vids, "score": scores}), out)
    console.print(f"wrote {len(vids)} predictions to {out}")


def _predict_videos(
    videos: list[str],
    model: str,
    out: Optional[str],
    captions: Optional[str],
    cache: Optional[str],
    run: Run,
    as_json: bool,
    timing: tuple[Optional[bool], Optional[float], Optional[float]],
    options: dict[str, str],
    heatmaps: Optional[str] = None,
) -> None:
    from rich.table import Table

    from tiermem.atomic import write_csv_atomic
    from tiermem.cli.progress import at_terminal
    from tiermem.errors import TiermemError
    from tiermem.models import load

    loaded = load(model, **options)
    if heatmaps and not hasattr(loaded, "heatmap"):
        raise TiermemError(f"--heatmaps: the model {model} scores captions, not frames: it has no heatmap")
    caps = None
    if captions:
        from tiermem.datasets.captions import read_captions_csv

        caps = read_captions_csv(captions)
    # A missing file is reported with the others that fail; the rest are still scored.
    with terminate_as_interrupt(), at_terminal(run, err_console) as shown:
        timeline, window, stride = timing
        pred = loaded.predict(
            videos,
            cache=cache,
            captions=caps,
            run=shown,
            missing="keep",
            timeline=timeline,
            window=window,
            stride=stride,
        )
    if pred.table.empty:  # every input failed: no table, no file
        print_failures(pred.failed)
        raise TiermemError(
            f"none of the {len(pred.failed)} inputs could be scored{'; nothing written' if out else ''}"
        )
    title = (
        loaded.description
        if pred.zero_shot or not hasattr(loaded, "config")
        else f"memorability ({loaded.config.target}; model {model})"
    )
    if out:
        write_csv_atomic(pred.rows(), out)
    if heatmaps:
        from tiermem.heatmap import write_heatmaps

        with err_console.status(f"heatmaps of {len(pred.table)} video(s) into {heatmaps} ..."):
            written = write_heatmaps(loaded, pred, heatmaps, run=run)
        err_console.print(f"wrote {len(written)} heatmap files to {heatmaps}", highlight=False)
    if as_json:
        typer.echo(to_json(pred.records()))
    else:
        table = Table(title=title)
        for col in ("video", "score", "percentile", "top tier contributions", "what the tiers saw"):
            table.add_column(col, justify="right" if col in ("score", "percentile") else "left")
        for i, row in enumerate(pred.table.itertuples(index=False)):
            contrib = pred.contributions[i] if pred.contributions else {}
            top = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))[:3]
            table.add_row(
                row.video_id
                + (
                    f"\n(mean of {len(pred.timelines[row.video_id].table)} windows)"
                    if row.video_id in pred.timelines
                    else ""
                ),
                f"{row.score:.3f}",
                "-" if row.percentile != row.percentile else f"{row.percentile:.0f}",
                ", ".join(f"{k} {v:+.3f}" for k, v in top) or "-",
                _fact_summary(pred.facts[i] if pred.facts else {}),
            )
        console.print(table)
        if pred.timelines:
            from tiermem.cli.timeline_view import print_timeline

            for tl in pred.timelines.values():
                print_timeline(tl, console)
        if out:
            console.print(f"wrote {len(pred.rows())} rows to {out}")
    print_failures(pred.failed)
    if pred.failed:
        raise typer.Exit(code=1)


def _fact_summary(facts: dict) -> str:
    """One short line of the most telling facts: top ImageNet/Kinetics label, faces."""
    parts = []
    for tier, key in (("mid", "imagenet_top5"), ("high", "kinetics_top5")):
        labels = facts.get(tier, {}).get(key)
        if labels:
            first = labels[0]
            parts.append(str(first.get("label", first)) if isinstance(first, dict) else str(first))
    faces = facts.get("mid", {}).get("frames_with_face")
    if faces and not str(faces).startswith("0/"):
        parts.append(f"faces in {faces} frames")
    return "; ".join(parts) or "-"

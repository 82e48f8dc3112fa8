"""The end-to-end pipeline on videos: `tiermem fit`, `tiermem predict` and `tiermem report`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from tiermem.cli.common import (
    HIGH_NETWORK_HELP,
    MID_BACKBONE_HELP,
    SHARE_RANGE,
    WEIGHTS_HELP,
    app,
    console,
    err_console,
    in_range,
    print_failures,
    reports_errors,
    split_list,
    terminate_as_interrupt,
    tier_options,
    to_json,
    with_head_options,
    with_run_options,
    writing_model,
)
from tiermem.cli.tables import BLOCK_HELP, load_blocks
from tiermem.datasets.registry import list_datasets
from tiermem.distinctiveness.registry import list_distinctiveness
from tiermem.tiers import list_tiers

if TYPE_CHECKING:
    from tiermem.model.options import HeadOptions
    from tiermem.run import Run


@app.command("fit")
@reports_errors
@with_head_options
@with_run_options
def fit_command(
    dataset: str = typer.Option(..., "--dataset", help=f"Layout: {', '.join(list_datasets())}."),
    root: str = typer.Option(..., "--root", help="Dataset folder (or the labels CSV for --dataset csv)."),
    out: str = typer.Option(..., "--out", help="Model artifact directory to write."),
    tiers: str = typer.Option("low,mid", "--tiers", help=f"Comma-separated tiers: {', '.join(list_tiers())}."),
    distinct: str = typer.Option("", "--distinct", help=f"Distinctiveness methods: {', '.join(list_distinctiveness())}."),
    distinct_source: Optional[str] = typer.Option(None, "--distinct-source", help="Tier(s) whose features define the context, e.g. mid or mid,high \\[default: mid; the m3s-reference preset: mid,high]."),
    target: Optional[str] = typer.Option(None, "--target", help="Score column \\[default: the dataset's standard target]."),
    cache: Optional[str] = typer.Option(None, "--cache", help="Feature store directory \\[default: OUT.features]."),
    frames: int = typer.Option(45, "--frames", callback=in_range(1), help="Frames decoded per video."),
    size: int = typer.Option(256, "--size", callback=in_range(16), help="Square frame size."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", callback=SHARE_RANGE, help="Validation share carved from train when the dataset has no val split."),
    ablate: bool = typer.Option(True, "--ablate/--no-ablate", help="Also fit every tier alone / all but one (for the report)."),
    weights: Optional[list[str]] = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    mid_backbone: Optional[str] = typer.Option(None, "--mid-backbone", help=MID_BACKBONE_HELP),
    high_network: Optional[str] = typer.Option(None, "--high-network", help=HIGH_NETWORK_HELP),
    as_json: bool = typer.Option(False, "--json", help="Also print the evaluation as JSON (validation.honest and validation.best_epoch_on_val) after the tables."),
    *,
    head_options: HeadOptions,
    run: Run,
) -> None:
    """Fit on the training split, evaluate on the validation split, save one artifact.

    Extracts every tier (cached), fits the tiers' state, distinctiveness and the head on the
    training videos only, then measures the model on the validation (and test) videos, runs
    the tier ablation and draws the maps the report shows.

    Example: tiermem fit --dataset memento10k --root data/memento10k --tiers low,mid,high
    --distinct knn --head m3s --loss mse_tails --out models/m10k
    """
    from tiermem.api import fit
    from tiermem.artifact import META_FILE
    from tiermem.cli.progress import at_terminal
    from tiermem.datasets.registry import read_dataset
    from tiermem.runtime import set_threads

    set_threads()
    with writing_model(out, META_FILE), terminate_as_interrupt(), at_terminal(run, console) as run:
        ds = read_dataset(dataset, root, target=target)
        cache = cache or f"{out.rstrip('/')}.features"
        options = head_options.with_preset(ds.name)
        pipe = fit(
            ds, cache=cache, tiers=split_list(tiers), distinct=split_list(distinct), preset=options.preset,
            head=options.head, run=run,
            head_params=options.params(), frames=frames, size=size, val_fraction=val_fraction,
            seed=options.seed, ablate=ablate, tier_config=tier_options(weights, mid_backbone, high_network),
            **({"distinct_source": distinct_source} if distinct_source else {}),
        )
        pipe.evaluate(ds, cache, run=run)
        pipe.save(out)
    if as_json:
        cfg = pipe.config
        typer.echo(to_json({"model": out, "preset": cfg.preset, "head": cfg.head, "tiers": cfg.tiers,
                            "distinct": cfg.distinct, "distinct_source": cfg.distinct_source, **pipe.evaluation.metrics}))
        return
    _print_fit(pipe)
    console.print(f"saved {out}")


def _print_fit(pipe) -> None:  # pipe: tiermem.pipeline.Pipeline
    """The validation (and test) figures, the tier ablation and the target scaling of a fit."""
    from rich.table import Table

    from tiermem.metrics import format_spearman
    from tiermem.model.protocols import PAPER_LABEL

    cfg, ev = pipe.config, pipe.evaluation
    if hasattr(pipe.head_, "chosen_"):  # the auto head: which candidate it kept, and why
        console.print(pipe.head_.describe_choice(), highlight=False)
    table = Table(title=f"{cfg.head} on {', '.join(cfg.tiers)}{' + distinct' if cfg.distinct else ''}: {cfg.target}")
    for col in ("split", "n", "Spearman [95% CI]", "Pearson", "MSE"):
        table.add_column(col, justify="left" if col == "split" else "right")
    paper = (ev.metrics.get("validation") or {}).get("best_epoch_on_val")
    for split, m in (("val", ev.metrics.get("val")), (f"val, best epoch: {PAPER_LABEL}", paper),
                     ("test", ev.metrics.get("test"))):
        if m:
            table.add_row(split, str(m["n"]), format_spearman(m), f"{m['pearson']:.3f}", f"{m['mse']:.4f}")
    console.print(table)
    if ev.ablation is not None:
        ab = Table(title="tier ablation (validation Spearman)")
        for col in ("tiers", "head", "Spearman [95% CI]", "best epoch on val: optimistic"):
            ab.add_column(col)
        for r in ev.ablation.to_dict(orient="records"):
            ab.add_row(r["tiers"], r["head"], format_spearman(r), f"{r['spearman_best_epoch_on_val']:.3f}")
        console.print(ab)
    if not pipe.head_.target_scaling_.is_identity:
        console.print(pipe.head_.target_scaling_.describe(), highlight=False, soft_wrap=True)


@app.command("predict")
@reports_errors
@with_run_options
def predict_command(
    videos: Optional[list[str]] = typer.Argument(None, help="Videos or folders to score (raw-video mode)."),
    model: Optional[str] = typer.Option(None, "--model", help="A `tiermem fit` artifact or a named model (`tiermem models`: zero-shot, memento10k-captions, videomem-titles) for videos, or a `tiermem train` head (tables) \\[default: zero-shot]."),
    block: Optional[list[str]] = typer.Option(None, "--block", help=BLOCK_HELP),
    out: Optional[str] = typer.Option(None, "--out", help="CSV to write (video_id, score, ...), atomically."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Table mode: CSV whose video_id column lists the videos to score \\[default: all in the first block]."),
    captions: Optional[str] = typer.Option(None, "--captions", help="Captions CSV (video_id + caption columns): for models with the text tier, and for the text models (memento10k-captions, videomem-titles), which score videos by their captions alone."),
    cache: Optional[str] = typer.Option(None, "--cache", help="Feature store to reuse between runs \\[default: a temporary one]."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON on stdout."),
    timeline: Optional[bool] = typer.Option(None, "--timeline/--no-timeline", help="Score every window of each video \\[default: for videos longer than 1.5 windows]."),
    window: Optional[float] = typer.Option(None, "--window", help="Timeline window, seconds \\[default: the model's training clip length; zero-shot 3]."),
    stride: Optional[float] = typer.Option(None, "--stride", help="Seconds between window starts \\[default: about 1, snapped so windows share frames]."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Zero-shot only: fp32 (default, the same on every CPU) or bf16 (ResMem ~1.5x faster on CPUs with bfloat16, scores within ~2e-3)."),
    heatmaps: Optional[str] = typer.Option(None, "--heatmaps", help="Folder for where-in-the-frame maps (occlusion against the image tiers) of each video's peak, trough and hook, or its middle: PNG overlays and JSON."),
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
    from tiermem.runtime import set_threads

    set_threads()
    if out is not None:
        check_output_file(out)
    if heatmaps is not None:
        from tiermem.atomic import check_output_dir

        check_output_dir(heatmaps)
    if block:
        if model is None or out is None:
            raise typer.BadParameter("table mode (--block) needs --model (a `tiermem train` head) and --out")
        _predict_tables(model, block, ids, out)
        return
    if not videos:
        raise typer.BadParameter("give videos/folders to score, or --block tables with --model")
    for name, value in (("window", window), ("stride", stride)):
        if value is not None and not value > 0:
            raise typer.BadParameter(f"--{name} must be a positive number of seconds, got {value:g}")
    options = {"precision": precision} if precision is not None else {}
    _predict_videos(videos, model or "zero-shot", out, captions, cache, run, as_json, (timeline, window, stride), options, heatmaps)


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
    videos: list[str], model: str, out: Optional[str], captions: Optional[str],
    cache: Optional[str], run: Run, as_json: bool, timing: tuple[Optional[bool], Optional[float], Optional[float]],
    options: dict[str, str], heatmaps: Optional[str] = None,
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
        pred = loaded.predict(videos, cache=cache, captions=caps, run=shown, missing="keep",
                              timeline=timeline, window=window, stride=stride)
    if pred.table.empty:  # every input failed: no table, no file
        print_failures(pred.failed)
        raise TiermemError(f"none of the {len(pred.failed)} inputs could be scored{'; nothing written' if out else ''}")
    title = loaded.description if pred.zero_shot or not hasattr(loaded, "config") else f"memorability ({loaded.config.target}; model {model})"
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
                row.video_id + (f"\n(mean of {len(pred.timelines[row.video_id].table)} windows)" if row.video_id in pred.timelines else ""),
                f"{row.score:.3f}", "-" if row.percentile != row.percentile else f"{row.percentile:.0f}",
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


@app.command("report")
@reports_errors
def report_command(
    model: str = typer.Option(..., "--model", help="Model artifact written by `tiermem fit`."),
    out: str = typer.Option("report.html", "--out", help="HTML file to write (self-contained)."),
    predictions: Optional[str] = typer.Option(None, "--predictions", help="CSV with video_id, score[, true] to show instead of the validation predictions."),
    video: Optional[list[str]] = typer.Option(None, "--video", help="A video to show over time (repeatable): its windows' scores, peak and trough frames, what changed."),
    window: Optional[float] = typer.Option(None, "--window", help="Timeline window, seconds \\[default: the model's training clip length]."),
    stride: Optional[float] = typer.Option(None, "--stride", help="Seconds between window starts \\[default: about 1, snapped so windows share frames]."),
    heatmaps: bool = typer.Option(False, "--heatmaps", help="With --video: under the peak and trough frames, where in the frame the score comes from (occlusion)."),
) -> None:
    """Write one self-contained HTML report: ablation, scatter, best/worst videos, t-SNE maps, distribution,
    and with --video each video's memorability over time.

    Examples: tiermem report --model models/m10k --out report.html;
    tiermem report --model models/m10k --video advert.mp4 --stride 2 --heatmaps --out advert.html
    """
    from pathlib import Path

    from tiermem.cli.progress import at_terminal
    from tiermem.pipeline import Pipeline
    from tiermem.report import pipeline_report, write_report
    from tiermem.run import Run

    for name, value in (("window", window), ("stride", stride)):
        if value is not None and not value > 0:
            raise typer.BadParameter(f"--{name} must be a positive number of seconds, got {value:g}")
    pipe = Pipeline.load(model)
    pred = None
    if predictions:
        from tiermem.datasets.record import read_csv, require_columns

        pred = read_csv(Path(predictions), dtype={"video_id": str})
        require_columns(pred, ["video_id", "score"], Path(predictions))
    data = pipeline_report(pipe, pred)
    # A video that cannot be read stops the report, naming the file.
    with terminate_as_interrupt(), at_terminal(Run(), err_console) as run:
        for each in video or []:
            tl = pipe.timeline(each, window=window, stride=stride, run=run)
            if tl.table.empty:
                from tiermem.errors import VideoDecodeError

                raise VideoDecodeError(each, f"no window could be scored{f' ({tl.failed})' if tl.failed else ''}")
            if tl.failed:
                err_console.print(f"{each}: decoding stopped early ({tl.failed}); the windows before it are shown",
                                  style="yellow", markup=False)
            data.timelines.append(tl)
            if heatmaps:
                data.heatmaps[tl.video_id] = {
                    kind: pipe.heatmap(each, (tl.summary[kind]["start"] + tl.summary[kind]["end"]) / 2, window=window, run=run)
                    for kind in ("peak", "trough")
                }
    path = write_report(data, out)
    console.print(f"wrote {path}" + (f" with the timeline of {len(data.timelines)} video(s)" if data.timelines else ""))

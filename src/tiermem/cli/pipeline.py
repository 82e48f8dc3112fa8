"""The end-to-end pipeline on videos: `tiermem fit` and `tiermem report` (`tiermem predict`: `cli.predict`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from tiermem.cli.common import (
    SHARE_RANGE,
    app,
    console,
    err_console,
    in_range,
    reports_errors,
    split_list,
    terminate_as_interrupt,
    to_json,
    writing_model,
)
from tiermem.cli.options import (
    HIGH_NETWORK_HELP,
    MID_BACKBONE_HELP,
    TEXT_MODEL_HELP,
    WEIGHTS_HELP,
    tier_options,
    with_head_options,
    with_run_options,
)
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
    tiers: str = typer.Option(
        "low,mid", "--tiers", help=f"Comma-separated tiers: {', '.join(list_tiers())}."
    ),
    distinct: str = typer.Option(
        "", "--distinct", help=f"Distinctiveness methods: {', '.join(list_distinctiveness())}."
    ),
    distinct_source: Optional[str] = typer.Option(
        None,
        "--distinct-source",
        help="Tier(s) whose features define the context, e.g. mid or mid,high \\[default: mid; the m3s-reference preset: mid,high].",
    ),
    target: Optional[str] = typer.Option(
        None, "--target", help="Score column \\[default: the dataset's standard target]."
    ),
    cache: Optional[str] = typer.Option(
        None, "--cache", help="Feature store directory \\[default: OUT.features]."
    ),
    frames: int = typer.Option(45, "--frames", callback=in_range(1), help="Frames decoded per video."),
    size: int = typer.Option(256, "--size", callback=in_range(16), help="Square frame size."),
    val_fraction: float = typer.Option(
        0.1,
        "--val-fraction",
        callback=SHARE_RANGE,
        help="Validation share carved from train when the dataset has no val split.",
    ),
    ablate: bool = typer.Option(
        True, "--ablate/--no-ablate", help="Also fit every tier alone / all but one (for the report)."
    ),
    weights: Optional[list[str]] = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    mid_backbone: Optional[str] = typer.Option(None, "--mid-backbone", help=MID_BACKBONE_HELP),
    text_model: Optional[str] = typer.Option(None, "--text-model", help=TEXT_MODEL_HELP),
    high_network: Optional[str] = typer.Option(None, "--high-network", help=HIGH_NETWORK_HELP),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Also print the evaluation as JSON (validation.honest and validation.best_epoch_on_val) after the tables.",
    ),
    refit: bool = typer.Option(
        True,
        "--refit/--no-refit",
        help="After the evaluation, fit distinctiveness and the head again on the training and validation "
        "videos and save that (--no-refit: save the model the evaluation measured).",
    ),
    *,
    head_options: HeadOptions,
    run: Run,
) -> None:
    """Fit on the training split, evaluate on the validation split, refit on both, save one artifact.

    Extracts every tier (cached), fits the tiers' state, distinctiveness and the head on the
    training videos only, then measures the model on the validation (and test) videos, runs
    the tier ablation and draws the maps the report shows; then fits distinctiveness and the
    head again on the training and validation videos (the tiers' state stays the training
    split's) and saves that model with the evaluation.

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
            ds,
            cache=cache,
            tiers=split_list(tiers),
            distinct=split_list(distinct),
            preset=options.preset,
            head=options.head,
            run=run,
            head_params=options.params(),
            frames=frames,
            size=size,
            val_fraction=val_fraction,
            seed=options.seed,
            ablate=ablate,
            tier_config=tier_options(weights, mid_backbone, high_network, text_model),
            **({"distinct_source": distinct_source} if distinct_source else {}),
        )
        pipe.evaluate(ds, cache, run=run)
        measured_on = len(pipe.train_scores_)
        if refit and pipe.evaluation is not None and pipe.evaluation.metrics.get("n_val"):
            pipe.refit(ds, cache, run=run)
        pipe.save(out)
    if as_json:
        cfg = pipe.config
        typer.echo(
            to_json(
                {
                    "model": out,
                    "preset": cfg.preset,
                    "head": cfg.head,
                    "tiers": cfg.tiers,
                    "distinct": cfg.distinct,
                    "distinct_source": cfg.distinct_source,
                    **pipe.evaluation.metrics,
                    "refitted_on": len(pipe.train_scores_) if len(pipe.train_scores_) > measured_on else None,
                }
            )
        )
        return
    _print_fit(pipe)
    if len(pipe.train_scores_) > measured_on:
        console.print(pipe.card()["statement"].split(";")[0], highlight=False)
    console.print(f"saved {out}")


def _print_fit(pipe) -> None:  # pipe: tiermem.pipeline.Pipeline
    """The validation (and test) figures, the tier ablation and the target scaling of a fit."""
    from rich.table import Table

    from tiermem.metrics import format_spearman
    from tiermem.model.protocols import PAPER_LABEL

    cfg, ev = pipe.config, pipe.evaluation
    if hasattr(pipe.head_, "chosen_"):  # the auto head: which candidate it kept, and why
        console.print(pipe.head_.describe_choice(), highlight=False)
    table = Table(
        title=f"{cfg.head} on {', '.join(cfg.tiers)}{' + distinct' if cfg.distinct else ''}: {cfg.target}"
    )
    for col in ("split", "n", "Spearman [95% CI]", "Pearson", "MSE"):
        table.add_column(col, justify="left" if col == "split" else "right")
    paper = (ev.metrics.get("validation") or {}).get("best_epoch_on_val")
    for split, m in (
        ("val", ev.metrics.get("val")),
        (f"val, best epoch: {PAPER_LABEL}", paper),
        ("test", ev.metrics.get("test")),
    ):
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


@app.command("report")
@reports_errors
def report_command(
    model: str = typer.Option(..., "--model", help="Model artifact written by `tiermem fit`."),
    out: str = typer.Option("report.html", "--out", help="HTML file to write (self-contained)."),
    predictions: Optional[str] = typer.Option(
        None,
        "--predictions",
        help="CSV with video_id, score[, true] to show instead of the validation predictions.",
    ),
    video: Optional[list[str]] = typer.Option(
        None,
        "--video",
        help="A video to show over time (repeatable): its windows' scores, peak and trough frames, what changed.",
    ),
    window: Optional[float] = typer.Option(
        None,
        "--window",
        callback=in_range(0, low_open=True),
        help="Timeline window, seconds \\[default: the model's training clip length].",
    ),
    stride: Optional[float] = typer.Option(
        None,
        "--stride",
        callback=in_range(0, low_open=True),
        help="Seconds between window starts \\[default: about 1, snapped so windows share frames].",
    ),
    heatmaps: bool = typer.Option(
        False,
        "--heatmaps",
        help="With --video: under the peak and trough frames, where in the frame the score comes from (occlusion).",
    ),
) -> None:
    """Write one self-contained HTML report: ablation, scatter, best/worst videos, t-SNE maps, distribution,
    and with --video each video's memorability over time.

    Examples: tiermem report --model models/m10k --out report.html;
    tiermem report --model models/m10k --video advert.mp4 --stride 2 --heatmaps --out advert.html
    """
    from pathlib import Path

    from tiermem.atomic import check_output_file
    from tiermem.cli.progress import at_terminal
    from tiermem.pipeline import Pipeline
    from tiermem.report import pipeline_report, write_report
    from tiermem.run import Run

    check_output_file(out)
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

                raise VideoDecodeError(
                    each, f"no window could be scored{f' ({tl.failed})' if tl.failed else ''}"
                )
            if tl.failed:
                err_console.print(
                    f"{each}: decoding stopped early ({tl.failed}); the windows before it are shown",
                    style="yellow",
                    markup=False,
                )
            data.timelines.append(tl)
            if heatmaps:
                data.heatmaps[tl.video_id] = {
                    kind: pipe.heatmap(
                        each,
                        (tl.summary[kind]["start"] + tl.summary[kind]["end"]) / 2,
                        window=window,
                        run=run,
                    )
                    for kind in ("peak", "trough")
                }
    path = write_report(data, out)
    console.print(
        f"wrote {path}" + (f" with the timeline of {len(data.timelines)} video(s)" if data.timelines else "")
    )

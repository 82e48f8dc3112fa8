"""Heads on feature tables: `tiermem train`, `tiermem evaluate` and `tiermem ablate`.

A block is any per-video table keyed by `video_id` (Parquet, CSV, a folder of .npy vectors,
or a `tiermem extract` table), given as ``--block NAME=TABLE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from tiermem.cli.common import (
    SEED_RANGE,
    app,
    console,
    err_console,
    in_range,
    metrics_table,
    refuse,
    reports_errors,
    to_json,
    writing_model,
)
from tiermem.cli.options import (
    with_head_options,
)
from tiermem.cli.progress import StepBars
from tiermem.run import Step

if TYPE_CHECKING:
    from tiermem.model.options import HeadOptions

BLOCK_HELP = "A feature block as NAME=TABLE (Parquet, CSV, a directory of <video_id>.npy, or a feature-store table); repeat for several."
_VAL_OPT = typer.Option(
    0.1,
    "--val-fraction",
    callback=in_range(0, 1, high_open=True),
    help="Share of labelled videos held out for validation (0: none).",
)
_DROP_OPT = typer.Option(
    False, "--drop-missing", help="Drop (and list) labelled videos missing from a block instead of failing."
)


def load_blocks(specs: list[str]) -> list:
    """Blocks from ``NAME=TABLE`` specs."""
    from tiermem.blocks import load_block, parse_block_spec

    return [load_block(path, name) for name, path in map(parse_block_spec, specs)]


def _resamples(param: typer.CallbackParam, value: int) -> int:
    if value != 0 and not 100 <= value <= 1_000_000:
        refuse(f"--resamples must be 0 (no CI) or from 100 to 1000000, got {value}")
    return value


def read_targets(labels: str, target: str) -> tuple[Any, Any]:
    """(ids, values) of the `target` column of a labels CSV; constant values are refused."""
    from tiermem.errors import DatasetError, TiermemError
    from tiermem.metrics import read_scores
    from tiermem.model.scaling import TargetScaling

    ids, y = read_scores(labels, target)
    try:
        TargetScaling.fit(y)
    except TiermemError as exc:
        raise DatasetError(f"{labels}: column {target!r}: {exc}") from None
    return ids, y


def _report_dropped(dropped: list[str]) -> None:
    if dropped:
        from tiermem.errors import first_few

        err_console.print(
            f"[yellow]warning:[/] dropped {len(dropped)} labelled videos absent from some block: {first_few(dropped, 10)}",
            highlight=False,
        )


@app.command("train")
@reports_errors
@with_head_options
def train_command(
    labels: str = typer.Option(..., "--labels", help="CSV with video_id and the target column."),
    target: str = typer.Option(..., "--target", help="Label column to learn, e.g. short_term."),
    block: list[str] = typer.Option(..., "--block", help=BLOCK_HELP),
    out: str = typer.Option(..., "--out", help="Model directory to write (head.json + weights.safetensors)."),
    val_fraction: float = _VAL_OPT,
    drop_missing: bool = _DROP_OPT,
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the figures as JSON (validation.honest and validation.best_epoch_on_val).",
    ),
    refit: bool = typer.Option(
        True,
        "--refit/--no-refit",
        help="After the validation, fit the same configuration on every labelled video and save that "
        "(--no-refit: save the head the validation measured, which never learnt from its videos).",
    ),
    *,
    head_options: HeadOptions,
) -> None:
    """Train a head on feature tables and save it.

    The validation split is reported twice: honestly (epochs chosen on the training videos)
    and as the M3-S paper does (best epoch on the validation split: optimistic).

    Example: tiermem train --labels labels_train.csv --target short_term
    --block coco=features_coco80_rn152.parquet --head m3s --loss mse_to_spearman --out model/
    """
    from tiermem.model.base import CONFIG_FILE
    from tiermem.model.experiment import fit_on_blocks
    from tiermem.runtime import set_threads

    set_threads()
    options = head_options.with_preset(labels)  # a per-dataset preset reads the dataset from the labels' path
    model = options.build()
    with writing_model(out, CONFIG_FILE):
        ids, y = read_targets(labels, target)
        blocks = load_blocks(block)
        quiet = options.head == "ridge" or as_json  # ridge has no epochs; JSON output stays clean
        with StepBars(console, enabled=not quiet) as progress:
            result = fit_on_blocks(
                blocks,
                ids,
                y,
                model,
                val_fraction=val_fraction,
                seed=options.seed,
                on_missing="drop" if drop_missing else "raise",
                progress=progress,
                refit=refit,
            )
        _report_dropped(result.dropped)
        result.final.save(out)
    if as_json:
        typer.echo(to_json(_train_document(result, options, target, out)))
        return
    rows = [("train", result.train)]
    if result.validation is not None:
        rows += [
            ("val", result.validation.honest),
            ("val, best epoch: optimistic (paper protocol)", result.validation.best_epoch_on_val),
        ]
    names = " + ".join(f"{b.name} ({len(b.feature_names)})" for b in result.head.layout_)
    console.print(metrics_table(f"{options.head} head on {names}: {target}", rows))
    by_epochs = result.head.name == "m3s" or getattr(result.head, "chosen_", None) == "m3s"
    if options.preset != "m3s" and by_epochs:  # the preset's training settings, where they applied
        shown = {
            "loss": options.loss and f"{options.loss} loss {options.loss_params or ''}".strip(),
            "lr": options.lr is not None and f"Adam lr {options.lr:g}",
            "wd": options.weight_decay is not None and f"weight decay {options.weight_decay:g}",
            "step": options.step_size is not None
            and options.gamma is not None
            and f"StepLR({options.step_size}, {options.gamma:g})",
        }
        console.print(
            f"preset {options.preset}: " + ", ".join(v for v in shown.values() if v), highlight=False
        )
    if hasattr(result.head, "chosen_"):  # the auto head: which candidate it kept, and why
        console.print(result.head.describe_choice(), highlight=False)
    if not result.head.target_scaling_.is_identity:
        console.print(result.head.target_scaling_.describe(), highlight=False, soft_wrap=True)
    if result.refitted is not None:
        console.print(
            f"validated on {len(result.val_ids)} videos (trained on the other {len(result.train_ids)}), then "
            f"refitted on all {len(result.train_ids) + len(result.val_ids)}: the saved model learnt from every label",
            highlight=False,
        )
    console.print(f"saved {out}")


def _train_document(result: Any, options: HeadOptions, target: str, out: str) -> dict[str, Any]:
    """What `train --json` prints: the settings, the training figures and both validation protocols."""
    return {
        "target": target,
        "model": out,
        "head": options.head,
        "preset": options.preset,
        "head_params": options.params(),
        "n_train": len(result.train_ids),
        "n_val": len(result.val_ids),
        "refitted_on": len(result.train_ids) + len(result.val_ids) if result.refitted is not None else None,
        "train": result.train.to_dict(),
        "validation": result.validation.to_dict() if result.validation is not None else None,
        "dropped": list(result.dropped),
    }


@app.command("evaluate")
@reports_errors
def evaluate_command(
    predictions: str = typer.Option(..., "--predictions", help="CSV with video_id and score."),
    labels: str = typer.Option(..., "--labels", help="CSV with video_id and the target column."),
    target: str = typer.Option(..., "--target", help="Label column, e.g. short_term."),
    score_column: str = typer.Option("score", "--score-column", help="Prediction column."),
    resamples: int = typer.Option(
        1000,
        "--resamples",
        callback=_resamples,
        help="Bootstrap resamples for the CI: 0 (none) or at least 100 (fewer give a CI that means nothing).",
    ),
    seed: int = typer.Option(0, "--seed", callback=SEED_RANGE, help="Bootstrap seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Spearman (bootstrap 95% CI), Pearson, MSE and MAE of predictions against labels.

    Example: tiermem evaluate --predictions predictions.csv --labels labels.csv --target short_term
    """
    from tiermem.metrics import evaluate, join_predictions

    pairs = join_predictions(predictions, labels, target, score_column=score_column)
    m = evaluate(pairs.y_true, pairs.y_pred, n_resamples=resamples, seed=seed)
    if as_json:  # an undefined figure (no resamples, a constant side) is null
        typer.echo(to_json({**m.to_dict(), "n_unpredicted": pairs.n_unpredicted}))
        return
    console.print(metrics_table(f"{predictions} vs {labels}: {target}", [("all", m)]))
    if pairs.n_unpredicted:
        console.print(f"{pairs.n_unpredicted} labelled videos have no prediction (not evaluated)")


@app.command("ablate")
@reports_errors
@with_head_options
def ablate_command(
    labels: str = typer.Option(..., "--labels", help="CSV with video_id and the target column."),
    target: str = typer.Option(..., "--target", help="Label column to learn."),
    block: list[str] = typer.Option(..., "--block", help=BLOCK_HELP),
    out: str = typer.Option(..., "--out", help="Prefix of the outputs: PREFIX.csv and PREFIX.md."),
    val_fraction: float = _VAL_OPT,
    drop_missing: bool = _DROP_OPT,
    *,
    head_options: HeadOptions,
) -> None:
    """Module study: every single block, every leave-one-out, all blocks (validation Spearman ± CI).

    Example: tiermem ablate --labels labels_train.csv --target short_term
    --block a=features_a.parquet --block b=features_b.parquet --head ridge --out ablation
    """
    from pathlib import Path

    from rich.table import Table

    from tiermem.ablation import ablate, ablation_configs, ablation_frame, ablation_markdown
    from tiermem.atomic import atomic_write, check_output_file, write_csv_atomic
    from tiermem.metrics import format_spearman
    from tiermem.runtime import set_threads

    set_threads()
    head_options = head_options.with_preset(labels)
    csv_path, md_path = Path(f"{out}.csv"), Path(f"{out}.md")
    for path in (csv_path, md_path):
        check_output_file(path)
    ids, y = read_targets(labels, target)
    blocks = load_blocks(block)
    n_configs = len(ablation_configs([b.name for b in blocks]))
    stage, done = f"ablation ({head_options.head})", iter(range(1, n_configs + 1))
    with StepBars(console) as progress:
        rows = ablate(
            blocks,
            ids,
            y,
            head_options.build,
            head=head_options.head,
            val_fraction=val_fraction,
            seed=head_options.seed,
            on_missing="drop" if drop_missing else "raise",
            on_row=lambda r: progress(
                Step(stage, next(done), n_configs, "configs", f"{r.label}: ρ {r.val.spearman:.3f}")
            ),
        )
    table = Table(title=f"ablation, {head_options.head} head, validation: {target}")
    for col in (
        "config",
        "features",
        "n",
        "Spearman [95% CI]",
        "Pearson",
        "MSE",
        "best epoch on val: optimistic",
    ):
        table.add_column(col, justify="left" if col == "config" else "right")
    for r in rows:
        m = r.val
        table.add_row(
            r.label,
            str(r.n_features),
            str(m.n),
            format_spearman(m),
            f"{m.pearson:.3f}",
            f"{m.mse:.4f}",
            format_spearman(r.val_best_epoch),
        )
    console.print(table)
    write_csv_atomic(ablation_frame(rows), csv_path)
    md = ablation_markdown(rows)
    atomic_write(md_path, lambda f: f.write(md.encode()))
    console.print(f"wrote {csv_path} and {md_path}")

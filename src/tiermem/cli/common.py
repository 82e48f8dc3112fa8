"""What every command shares: the Typer app, the consoles, one-line errors, shared options.

Options used by several commands are defined once here: the network choices of `extract` and
`fit` (`tier_options`) and the head's settings of `train`, `ablate` and `fit`
(`with_head_options`, which adds them to a command and hands it one `HeadOptions`). Every
numeric option checks its range as it is parsed (`in_range`), before any file is read.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tiermem.errors import TiermemError
from tiermem.model.registry import list_heads

if TYPE_CHECKING:
    from tiermem.extraction.report import ExtractReport

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
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def refuse(message: str) -> NoReturn:
    """End the command with one error line on stderr and exit code 1 (for checks made while parsing)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def in_range(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Callable[[typer.CallbackParam, Any], Any]:
    """A callback refusing, as the option is parsed, a number outside the range or not finite."""
    if low is not None and high is not None:
        shown = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        shown = f"{'>' if low_open else '>='} {low}"
    else:
        shown = f"{'<' if high_open else '<='} {high}"

    def check(param: typer.CallbackParam, value: Any) -> Any:
        if value is None:
            return value
        fits = math.isfinite(value)
        if fits and low is not None:
            fits = value > low if low_open else value >= low
        if fits and high is not None:
            fits = value < high if high_open else value <= high
        if not fits:
            refuse(f"{param.opts[0]} must be {shown}, got {value}")
        return value

    return check


def _hidden_sizes(param: typer.CallbackParam, value: str | None) -> str | None:
    from tiermem.model.options import parse_hidden

    if value is None:
        return None
    try:
        parse_hidden(value)
    except TiermemError as exc:
        refuse(str(exc))
    return value


#: Seeds are unsigned 32-bit numbers (numpy's and torch's generators take them all).
SEED_RANGE = in_range(0, 2**32 - 1)
#: A share of the videos to hold out that leaves some to train on.
SHARE_RANGE = in_range(0, 1, low_open=True, high_open=True)


def to_json(doc: Any) -> str:
    """Strict JSON for machines: numpy values become plain ones, NaN and infinities `null`."""
    from tiermem.predictions import jsonable

    return json.dumps(jsonable(doc), indent=1, allow_nan=False)


@contextlib.contextmanager
def writing_model(out: str, marker: str) -> Iterator[None]:
    """Check, before any work, that `out` can take a model directory holding `marker`, and
    hold its lock for the whole command, so a second run on the same path is refused."""
    from tiermem.atomic import check_output_dir, output_lock

    check_output_dir(out, marker)
    with output_lock(out):
        yield


def split_list(values: str | list[str] | None) -> list[str]:
    """Names from comma-separated and/or repeated options: ``low,mid`` or ``--tiers low --tiers mid``."""
    specs = [values] if isinstance(values, str) else list(values or [])
    return [v.strip() for spec in specs for v in spec.split(",") if v.strip()]


# -- networks of the mid and high tiers (extract, fit) ----------------------------------------

WEIGHTS_HELP = "Local weights for a network tier, TIER=PATH (.pth state dict or .safetensors), e.g. high=r2plus1d_18.pth; repeatable."
MID_BACKBONE_HELP = "Mid-tier image network: efficientnet_lite0 (packaged, offline), timm:NAME or torchvision:NAME."
HIGH_NETWORK_HELP = "High-tier Kinetics-400 network: r2plus1d_18, r3d_18, mc3_18, s3d, mvit_v2_s or swin3d_t."


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


# -- the head's settings (train, ablate, fit) --------------------------------------------------

_HEAD_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in [
        ("head", Optional[str], typer.Option(None, "--head", help=f"Head \\[default: auto]: {', '.join(list_heads())} (auto: under 2000 training videos ridge or m3s, whichever wins 5-fold CV on them, else m3s; m3s: the M3-S MLP; ridge: the closed-form baseline).")),
        ("loss", Optional[str], typer.Option(None, "--loss", help="m3s loss: mse, mse_tails, l1, spearman, mse_to_spearman \\[default: mse].")),
        ("epochs", Optional[int], typer.Option(None, "--epochs", callback=in_range(1), help="Training epochs (m3s) \\[default: 20, or the preset's].")),
        ("batch_size", Optional[int], typer.Option(None, "--batch-size", callback=in_range(1), help="Mini-batch size (m3s) \\[default: 32, or the preset's].")),
        ("lr", Optional[float], typer.Option(None, "--lr", callback=in_range(0, low_open=True), help="Adam learning rate (m3s) \\[default: 1e-3, or the preset's].")),
        ("weight_decay", Optional[float], typer.Option(None, "--weight-decay", callback=in_range(0), help="Adam weight decay (m3s) \\[default: 1e-5, or the preset's].")),
        ("hidden", Optional[str], typer.Option(None, "--hidden", callback=_hidden_sizes, help="Hidden layer sizes (m3s) \\[default: 512,64].")),
        ("dropout", Optional[float], typer.Option(None, "--dropout", callback=in_range(0, 1, high_open=True), help="Dropout after each hidden layer (m3s; realbench setting: 0.5) \\[default: 0].")),
        ("seed", int, typer.Option(0, "--seed", callback=SEED_RANGE, help="Seed of the validation split and of training.")),
        ("ensemble", Optional[int], typer.Option(None, "--ensemble", callback=in_range(1), help="Train K seeds and average them (m3s) \\[default: 1].")),
        ("early_stopping", Optional[float], typer.Option(
            None, "--early-stopping", callback=in_range(0, 1, high_open=True),
            help="Share of the training videos each m3s seed holds out to pick its best epoch (0: train all epochs) \\[default: 0.1]. "
            "realbench setting: --dropout 0.5 --ensemble 10 --early-stopping 0.3.",
        )),
        ("preset", str, typer.Option("m3s", "--preset", help="Choices as a whole: m3s (tiermem's own) or m3s-reference (the M3-S reference code's, per dataset: -memento10k or -videomem; see tiermem.presets). Options given explicitly still win.")),
        ("step_size", Optional[int], typer.Option(None, "--lr-step", callback=in_range(1), help="StepLR: epochs between learning-rate decays (m3s) \\[default: 5, or the preset's].")),
        ("gamma", Optional[float], typer.Option(None, "--lr-gamma", callback=in_range(0, low_open=True), help="StepLR: factor of each decay (m3s) \\[default: 0.2, or the preset's].")),
    ]
]

#: Loss parameters as options: (parameter, option, type, help); unset ones keep the loss's default.
_LOSS_OPTIONS = [
    ("c", "--tail-c", float, "mse_tails: weight of the tails, 1 + c·|m − centre|^p \\[5]."),
    ("p", "--tail-p", float, "mse_tails: exponent p \\[1]."),
    ("centre", "--tail-centre", float, "mse_tails: fixed centre \\[the batch mean]."),
    ("weight", "--spearman-weight", float, "spearman, mse_to_spearman: weight of the 1 − ρ term \\[1]."),
    ("rank", "--rank", str, "spearman, mse_to_spearman: soft rank of the predictions, sigmoid or permutahedron \\[sigmoid]."),
    ("strength", "--rank-strength", float, "permutahedron rank: l2 regularisation strength \\[1]."),
    ("target_rank", "--target-rank", str, "spearman, mse_to_spearman: ranks of the targets, hard or soft \\[hard]."),
]
_HEAD_PARAMETERS += [
    inspect.Parameter(f"loss_{name}", inspect.Parameter.KEYWORD_ONLY, default=typer.Option(None, option, help=help_),
                      annotation=Optional[kind])
    for name, option, kind, help_ in _LOSS_OPTIONS
]


def _grouped_options(fn: F, target: str, parameters: list[inspect.Parameter], build: Callable[[dict[str, Any]], Any]) -> F:
    """Give a command a group of options it receives as one object: the command declares the
    keyword parameter `target`; its command-line signature shows `parameters` in its place,
    and `build` turns their values into the object (refusing bad settings before any work)."""
    signature = inspect.signature(fn)
    names = [p.name for p in parameters]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        return fn(*args, **{target: build(values)}, **kwargs)

    params = [p for p in signature.parameters.values() if p.name != target]
    wrapper.__signature__ = signature.replace(parameters=params + parameters)  # type: ignore[attr-defined]
    annotations = {k: v for k, v in fn.__annotations__.items() if k != target}
    wrapper.__annotations__ = {**annotations, **{p.name: p.annotation for p in parameters}}
    return wrapper  # type: ignore[return-value]


def _head_options(values: dict[str, Any]) -> Any:
    from tiermem.model.options import HeadOptions, parse_hidden

    values["hidden"] = parse_hidden(values["hidden"]) if values["hidden"] is not None else None
    given = {name: values.pop(f"loss_{name}") for name, *_ in _LOSS_OPTIONS}
    options = HeadOptions(**values, loss_params={k: v for k, v in given.items() if v is not None})
    options.params()  # refuse a bad setting before any table is read or video decoded
    return options


def with_head_options(fn: F) -> F:
    """Give a command the head options; it receives them as one checked `HeadOptions` (``head_options``)."""
    return _grouped_options(fn, "head_options", _HEAD_PARAMETERS, _head_options)


_RUN_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in [
        ("workers", int, typer.Option(1, "--workers", callback=in_range(1), help="Extraction worker processes (each gets cores / workers threads), or Ray actors.")),
        ("engine_name", str, typer.Option("local", "--engine", help="Where extraction runs: local (processes here) or ray (a Ray cluster; pip install 'tiermem\\[ray]').")),
        ("ray_address", Optional[str], typer.Option(None, "--ray-address", help="Ray cluster: auto or ray://HOST:10001 \\[default: a local cluster]; paths must be on a filesystem every node reads.")),
        ("cpus_per_worker", float, typer.Option(1.0, "--cpus-per-worker", help="Ray: CPUs each worker asks for (its threads).")),
        ("gpus_per_worker", float, typer.Option(0.0, "--gpus-per-worker", help="Ray: GPUs each worker asks for.")),
        ("device", str, typer.Option("auto", "--device", help="Where the networks (and the M3-S head) run: auto (CUDA when there), cpu or cuda.")),
    ]
]


def _run(values: dict[str, Any]) -> Any:
    from tiermem.run import Engine, Run

    try:
        engine = Engine(values["engine_name"], address=values["ray_address"], cpus_per_worker=values["cpus_per_worker"],
                        gpus_per_worker=values["gpus_per_worker"])
        return Run(workers=values["workers"], engine=engine, device=values["device"])
    except TiermemError as exc:
        refuse(str(exc))


def with_run_options(fn: F) -> F:
    """Give a command the run's options (workers, engine, device); it receives one checked `Run` (``run``)."""
    return _grouped_options(fn, "run", _RUN_PARAMETERS, _run)


# -- printing ----------------------------------------------------------------------------------


def metrics_table(title: str, rows: list[tuple[str, Any]]):  # -> rich.table.Table
    """One row per split: n, Spearman [95% CI], Pearson, MSE, MAE."""
    from rich.table import Table

    from tiermem.metrics import format_spearman

    table = Table(title=title)
    for col in ("split", "n", "Spearman [95% CI]", "Pearson", "MSE", "MAE"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for name, m in rows:
        table.add_row(name, str(m.n), format_spearman(m), f"{m.pearson:.3f}", f"{m.mse:.4f}", f"{m.mae:.4f}")
    return table


def print_failures(failed: list[tuple[str, str]], to: Console = err_console) -> None:
    """`✗ path: reason` per file that failed (on stderr unless told otherwise), one line each,
    never folded (easy to grep and copy)."""
    if failed:
        to.print(f"[bold red]{len(failed)} failed:[/]")
    for path, reason in failed:
        to.print(f"  [red]✗[/] {escape(path)}: {escape(reason)}", highlight=False, soft_wrap=True)


def extract_summary(report: ExtractReport):  # -> rich.table.Table
    """What an extraction did: done / skipped / failed counts and its time."""
    from rich.table import Table

    table = Table(title=f"extract {', '.join(report.tiers)} → {report.out}")
    table.add_column("done", justify="right", style="green")
    table.add_column("skipped (cached)", justify="right")
    table.add_column("failed", justify="right", style="red" if report.failed else None)
    table.add_column("time", justify="right")
    table.add_row(str(len(report.done)), str(len(report.skipped)), str(len(report.failed)), f"{report.seconds:.1f} s")
    return table


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the run lasts, SIGTERM ends it as Ctrl-C does: finished feature rows are saved, the workers
    stopped, the store unlocked, and the exit status is 143. Signals are only set in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

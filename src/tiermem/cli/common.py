"""What every command shares: the Typer app, the consoles, one-line errors, range checks, printing.

Every numeric option checks its range as it is parsed (`in_range`), before any file is read.
The option groups several commands take are in `tiermem.cli.options`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tiermem.errors import TiermemError

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
    table.add_row(
        str(len(report.done)), str(len(report.skipped)), str(len(report.failed)), f"{report.seconds:.1f} s"
    )
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

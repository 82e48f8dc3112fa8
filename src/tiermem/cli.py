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

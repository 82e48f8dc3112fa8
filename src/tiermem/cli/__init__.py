"""The `tiermem` command line: Typer commands grouped by what the user does.

- `extract`, `info`: features of many videos, metadata of one (`tiermem.cli.extract`);
- `fit`, `predict`, `report`: the pipeline on videos (`tiermem.cli.pipeline`);
- `train`, `evaluate`, `ablate`: heads on feature tables (`tiermem.cli.tables`);
- `distinct`: distinctiveness within a context (`tiermem.cli.distinct`);
- `models`, `predict-text`: the named models' cards, descriptions scored by a text model
  (`tiermem.cli.models`);
- `demo`: the whole offline pipeline on sample videos (`tiermem.cli.demo`);
- `serve`: the HTTP API and web page (`tiermem.cli.serve`).

Each command is a thin call into the library. Every `TiermemError` becomes one line on stderr
and exit code 1.
"""

from __future__ import annotations

from typing import Optional

import typer

from tiermem import __version__
from tiermem.cli import demo, distinct, extract, models, pipeline, predict, serve, tables  # noqa: F401 - each registers its commands
from tiermem.cli.common import app, console


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


__all__ = ["app"]

"""A run's progress and notes at the terminal: one rich progress bar per stage, notes as lines.

The library reports `tiermem.run.Step` events and notes through callbacks and never prints;
`StepBars` draws the steps, and `at_terminal` gives a command a `Run` whose callbacks draw
on the terminal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from tiermem.run import Run, Step


class StepBars:
    """A `ProgressCallback` drawing one bar per stage on `console`. The display starts with the
    first step, so a command that stops early on an error prints no empty bar."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} {task.fields[unit]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> "StepBars":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.tasks:
            self.progress.stop()

    def __call__(self, step: Step) -> None:
        if not self.tasks:
            self.progress.start()
        task = self.tasks.get(step.stage)
        if task is None:
            task = self.tasks[step.stage] = self.progress.add_task(
                step.stage, total=step.total, unit=step.unit
            )
        shown = f"{step.stage} · {step.detail}" if step.detail else step.stage
        self.progress.update(task, completed=step.done, total=step.total, description=shown)


@contextmanager
def at_terminal(run: Run, console: Console, *, bars: bool = True) -> Iterator[Run]:
    """`run` with callbacks that draw each stage's bar on `console` (unless `bars` is False) and
    print its notes there, warnings in yellow."""

    def on_note(line: str, warning: bool) -> None:
        console.print(Text(line, style="yellow" if warning else ""), highlight=False, soft_wrap=True)

    with StepBars(console, bars) as draw:
        yield run.but(on_progress=draw, on_note=on_note)


__all__ = ["StepBars", "at_terminal"]

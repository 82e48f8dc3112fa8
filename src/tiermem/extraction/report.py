"""What an extraction run did, as counts for a person and as JSON for a script."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


@dataclass
class ExtractReport:
    """What a run did: ids extracted now, ids already cached, files that failed and why."""

    out: Path
    tiers: list[str]
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    fitted: list[str] = field(default_factory=list)  # tiers whose state was fitted in this run
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "tiers": self.tiers,
            "done": self.done,
            "skipped": self.skipped,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "fitted": self.fitted,
            "seconds": round(self.seconds, 3),
        }

    def summary_table(self) -> Table:
        """done / skipped / failed counts as a rich table."""
        from rich.table import Table

        table = Table(title=f"extract {', '.join(self.tiers)} → {self.out}")
        table.add_column("done", justify="right", style="green")
        table.add_column("skipped (cached)", justify="right")
        table.add_column("failed", justify="right", style="red" if self.failed else None)
        table.add_column("time", justify="right")
        table.add_row(str(len(self.done)), str(len(self.skipped)), str(len(self.failed)), f"{self.seconds:.1f} s")
        return table


def print_failures(failed: list[tuple[str, str]], console: Console) -> None:
    """One line per failed file, `✗ path: reason`, never folded (easy to grep and copy)."""
    from rich.markup import escape

    if failed:
        console.print(f"[bold red]{len(failed)} failed:[/]")
    for path, reason in failed:
        console.print(f"  [red]✗[/] {escape(path)}: {escape(reason)}", highlight=False, soft_wrap=True)

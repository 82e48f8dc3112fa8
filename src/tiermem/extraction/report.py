"""What an extraction run did: ids extracted and skipped, files that failed and why (and as JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ExtractReport:
    """What a run did: ids extracted now, ids already cached, files that failed and why."""

    out: Path | None  # the feature store's directory; None for a store held in memory
    tiers: list[str]
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    fitted: list[str] = field(default_factory=list)  # tiers whose state was fitted in this run
    #: For each video a device stage ran, the clips in its batch (empty without a stage): how
    #: full the stage's batches were, here or in the Ray workers.
    device_batches: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out) if self.out is not None else None,
            "tiers": self.tiers,
            "done": self.done,
            "skipped": self.skipped,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "fitted": self.fitted,
            "seconds": round(self.seconds, 3),
        }

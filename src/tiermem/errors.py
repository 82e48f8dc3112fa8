"""One exception type per failure family; each message names the offending file or row.

The CLI turns any `TiermemError` into a single line on stderr and a non-zero exit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence


class TiermemError(Exception):
    """Base of every error tiermem raises on purpose (bad input, missing weights, ...)."""


class VideoDecodeError(TiermemError):
    """A file is not a decodable video: not a video, empty, truncated, zero frames, unsupported codec."""

    def __init__(self, path: object, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:  # crosses to and from worker processes
        return type(self), (self.path, self.cause)


class MissingWeightsError(TiermemError):
    """Pretrained weights are not available offline; the message says which file and how to provide it."""


class DataMismatchError(TiermemError):
    """Tables or labels do not line up: missing/duplicate ids, NaN/inf, wrong dimension, missing column."""


class DatasetError(TiermemError):
    """A dataset file does not follow its published layout (the message names file and row)."""


class ArtifactError(TiermemError):
    """A saved model or fitted state is damaged or does not fit what it claims to be (names the file)."""


class OutputError(TiermemError):
    """An output path cannot take what a command writes, or another run is writing it (names the path)."""


def first_few(items: Sequence[object], k: int = 5) -> str:
    """The first `k` items for an error message, with how many more there are."""
    more = f", ... (+{len(items) - k} more)" if len(items) > k else ""
    return ", ".join(map(str, items[:k])) + more


def duplicated(ids: Iterable[object]) -> list[str]:
    """Ids that occur more than once, sorted (each once)."""
    counts = Counter(map(str, ids))
    return sorted(v for v, n in counts.items() if n > 1)

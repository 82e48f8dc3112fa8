"""The registry of dataset layouts: a name, its reader, and the target it is usually scored on.

    @register_dataset("memento10k", default_target="mem_score")
    def read_memento10k(root, ...) -> Dataset: ...

`read_dataset(layout, path, target=None)` reads with the registered reader and records the
target a fit should learn (the one named, else the layout's standard target) on the record.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiermem.errors import DatasetError
from tiermem.registry import Registry

if TYPE_CHECKING:
    from tiermem.datasets.record import Dataset

Reader = Callable[..., "Dataset"]


@dataclass(frozen=True)
class DatasetLayout:
    """A published layout: how to read it and what it is scored on."""

    name: str
    read: Reader
    default_target: str | None = None  # the column a fit learns when no target is named
    target_option: str | None = None  # the reader's keyword that takes the target (a CSV's score column)


_LAYOUTS: Registry[DatasetLayout] = Registry(
    "dataset layout",
    modules=[
        f"tiermem.datasets.{module}"
        for module in ("memento", "mediaeval2021", "videomem", "generic", "realbench")
    ],
    decorator_name="register_dataset",
    error=DatasetError,
)


def register_dataset(
    name: str, *, default_target: str | None = None, target_option: str | None = None
) -> Callable[[Reader], Reader]:
    """Decorator: register a reader function as the layout `name`."""

    def register(read: Reader) -> Reader:
        _LAYOUTS.register(name, DatasetLayout(name, read, default_target, target_option))
        return read

    return register


def get_dataset(name: str) -> DatasetLayout:
    """The layout registered as `name` (its reader and standard target)."""
    return _LAYOUTS.get(name)


def list_datasets() -> list[str]:
    """Names accepted by `read_dataset`."""
    return _LAYOUTS.names()


def read_dataset(layout: str, path: str | Path, *, target: str | None = None, **options: Any) -> "Dataset":
    """Read `path` with the reader of `layout`, passing its options on.

    `target` names the score column to learn (required by layouts without a standard one,
    such as ``csv``); the returned record's `default_target` is that column.
    """
    entry = get_dataset(layout)
    if entry.target_option is not None:
        if target is not None:
            options[entry.target_option] = target
        elif entry.target_option not in options:
            raise DatasetError(f"the {layout} layout needs a target: the name of its score column")
        elif isinstance(options[entry.target_option], str):
            target = options[entry.target_option]
    try:
        inspect.signature(entry.read).bind(path, **options)
    except TypeError as exc:  # an option this layout's reader does not take
        raise DatasetError(f"dataset layout {layout!r}: {exc}") from None
    dataset = entry.read(path, **options)
    return replace(dataset, default_target=target or entry.default_target)


__all__ = ["DatasetLayout", "get_dataset", "list_datasets", "read_dataset", "register_dataset"]

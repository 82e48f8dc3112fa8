"""Which video files a run works on: paths and directories as given, turned into files and ids.

    >>> from tiermem.inputs import find_videos, video_ids
    >>> paths = find_videos(["videos/", "extra/clip.mp4"])
    >>> ids = video_ids(paths)  # the file stems, unique

One path (a string or a `Path`) means one input, never the characters of a string.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, TypeAlias

from tiermem.errors import DataMismatchError, TiermemError

#: File extensions picked up when a directory is given (a file named explicitly is always tried).
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv")

#: One path, or any iterable of paths.
PathInputs: TypeAlias = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def as_path_list(inputs: PathInputs) -> list[Path]:
    """One path as a one-element list, several as a list, each a `Path`."""
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    return [Path(p) for p in inputs]


def find_videos(inputs: PathInputs, *, missing: Literal["keep", "raise"] = "keep") -> list[Path]:
    """Expand directories (recursively, sorted) into video files; keep named files as given.

    A path that does not exist is kept with ``missing="keep"``, so that extraction reports it
    as a failure with its reason rather than silently dropping it; ``missing="raise"`` raises
    a `TiermemError` naming it. A file reached twice (named and inside a directory) is kept once.
    """
    if missing not in ("keep", "raise"):
        raise ValueError(f"missing={missing!r}: use 'keep' or 'raise'")
    found: list[Path] = []
    for p in as_path_list(inputs):
        if p.is_dir():
            found.extend(
                sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
            )
        elif missing == "raise" and not p.exists():
            raise TiermemError(f"{p}: no such file or directory")
        else:
            found.append(p)
    unique: dict[Path, Path] = {}
    for f in found:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def video_ids(paths: Sequence[Path]) -> list[str]:
    """The file stem of each path; two files with the same stem are refused (ids key every table)."""
    by_id: dict[str, list[Path]] = {}
    for p in paths:
        by_id.setdefault(p.stem, []).append(p)
    clashes = {vid: ps for vid, ps in by_id.items() if len(ps) > 1}
    if clashes:
        shown = "; ".join(f"{vid!r}: {', '.join(map(str, ps))}" for vid, ps in sorted(clashes.items())[:5])
        more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
        raise DataMismatchError(
            f"{len(clashes)} video id(s) used by more than one file (the id is the file stem): {shown}{more}"
        )
    return [p.stem for p in paths]

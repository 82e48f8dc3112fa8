"""Which video files a run works on: paths and directories as given, turned into files and ids.

    >>> from tiermem.inputs import find_videos, video_ids
    >>> paths = find_videos([videos, video])   # a directory (searched recursively) and a file
    >>> video_ids(paths)                        # the file stems, unique
    ['bigbuckbunny_000', 'bikes_000', 'bikes_001', 'bikes_002', 'carphone_distorted_000', 'carphone_pristine_000']

One path (a string or a `Path`) means one input, never the characters of a string.

Entries that cannot be read are kept in the list, never dropped in silence: a missing file,
a dangling or looping symbolic link, a folder that cannot be listed. Extraction then reports
each of them as a failed input with the reason `unreadable_reason` gives.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, TypeAlias

from tiermem.errors import DataMismatchError, TiermemError

#: File extensions picked up when a directory is given (a file named explicitly is always tried).
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv")

#: One path, or any iterable of paths.
PathInputs: TypeAlias = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]

_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _as_given(inputs: PathInputs) -> list[str]:
    """Each input as the user wrote it (a trailing slash kept), for messages."""
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    return [os.fspath(p) for p in inputs]


def as_path_list(inputs: PathInputs) -> list[Path]:
    """One path as a one-element list, several as a list, each a `Path`."""
    return [Path(p) for p in _as_given(inputs)]


def unreadable_reason(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be opened as a video file, in a user's words; None when it can be.

    Tells a dangling symbolic link, a symbolic link loop, a directory, a file that may not be
    opened and a FIFO or device (which would block or never end) from a plain missing file.
    """
    p = os.fspath(path)
    try:
        info = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            return f"dangling symlink (points to {os.readlink(p)}, which does not exist)"
        return "file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        return f"cannot read file ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode):
        try:
            with os.scandir(p):
                pass
        except OSError as exc:
            return f"cannot list folder ({exc.strerror or exc})"
        return "is a directory, not a video file"
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file: {_FILE_KINDS.get(stat.S_IFMT(info.st_mode), 'a special file')}"
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        return f"cannot open file ({exc.strerror or exc})"
    return None


def find_videos(inputs: PathInputs, *, missing: Literal["keep", "raise"] = "keep") -> list[Path]:
    """Expand directories (recursively, sorted) into video files; keep named files as given.

    A path that does not exist is kept with ``missing="keep"``, so that extraction reports it
    as a failure with its reason rather than silently dropping it; ``missing="raise"`` raises
    a `TiermemError` naming it. A file reached twice (named and inside a directory) is kept once.
    Inside directories, every entry with a video extension is kept (a dangling or looping
    link, a FIFO: extraction reports why it cannot be read), as are a broken link without an
    extension (maybe a link to a folder of videos) and a folder that cannot be listed;
    symbolic links to folders are not followed. Raises a `TiermemError` naming the inputs when
    they hold no video file at all.
    """
    if missing not in ("keep", "raise"):
        raise ValueError(f"missing={missing!r}: use 'keep' or 'raise'")
    given = _as_given(inputs)
    if not given:
        raise TiermemError("no video files given")
    found: list[Path] = []
    for p in map(Path, given):
        if os.path.isdir(p):
            found.extend(_scan(p))
        elif missing == "raise" and not os.path.exists(p):
            reason = unreadable_reason(p)
            raise TiermemError(
                f"{p}: {'no such file or directory' if reason == 'file not found' else reason}"
            )
        else:
            found.append(p)
    if not found:
        raise TiermemError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in {', '.join(given)}")
    unique: dict[str, Path] = {}
    for f in found:
        unique.setdefault(os.path.realpath(f), f)  # realpath, unlike Path.resolve, accepts link loops
    return list(unique.values())


def _scan(top: Path) -> list[Path]:
    """Video files under `top`, sorted, plus the entries that could not be read (see `find_videos`)."""
    found: list[Path] = []

    def unlisted(exc: OSError) -> None:
        found.append(Path(exc.filename) if exc.filename else top)

    for folder, _, files in os.walk(top, onerror=unlisted):
        for name in files:
            entry = Path(folder, name)
            suffix = entry.suffix.lower()
            if suffix in VIDEO_EXTENSIONS or (
                not suffix and os.path.islink(entry) and not os.path.exists(entry)
            ):
                found.append(entry)
    return sorted(found)


def video_ids(paths: Sequence[Path]) -> list[str]:
    """The file stem of each path; two files with the same stem are refused (ids key every table)."""
    clashes = shared_ids(paths)
    if clashes:
        shown = "; ".join(f"{vid!r}: {', '.join(map(str, ps))}" for vid, ps in sorted(clashes.items())[:5])
        more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
        raise DataMismatchError(
            f"{len(clashes)} video id(s) used by more than one file (the id is the file stem): {shown}{more}"
        )
    return [p.stem for p in paths]


def shared_ids(paths: Sequence[Path]) -> dict[str, list[Path]]:
    """Ids (file stems) used by more than one of `paths`, each with its files in input order."""
    by_id: dict[str, list[Path]] = {}
    for p in paths:
        by_id.setdefault(p.stem, []).append(p)
    return {vid: ps for vid, ps in by_id.items() if len(ps) > 1}

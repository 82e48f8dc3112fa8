"""Writes that readers see whole or not at all: files, CSV tables and model directories.

A file is written beside its destination, fsynced and renamed over it (an atomic rename on one
filesystem); a model directory is built beside its destination and swapped into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

if TYPE_CHECKING:
    import pandas as pd


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write `path` via `write(fileobj)` so that readers see the old file or the new, never half.

    The temporary file lives in the same directory (same filesystem, so `os.replace` is an
    atomic rename) and is fsynced before the rename; the directory is fsynced after it so
    the rename itself survives a power cut.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_csv_atomic(df: "pd.DataFrame", path: str | os.PathLike[str], float_format: str = "%.6f") -> Path:
    """A table as CSV, written atomically (readers never see half a file); parents are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = df.to_csv(index=False, float_format=float_format).encode()
    atomic_write(path, lambda f: f.write(data))
    return path


def write_dir_atomic(out: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Build a directory with `write(tmp)` beside `out`, then swap it into place.

    Readers see the old directory or the new one, never a half-written one; a failed
    `write` leaves `out` untouched and removes the partial copy.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(out.parent)
    return out


__all__ = ["atomic_write", "fsync_dir", "write_csv_atomic", "write_dir_atomic"]

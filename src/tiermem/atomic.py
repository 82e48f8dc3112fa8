"""Writes that readers see whole or not at all: files, CSV tables and model directories.

A file is written beside its destination, fsynced and renamed over it (an atomic rename on one
filesystem). A model directory is built beside its destination and swapped with the old one in
a single step (Linux ``renameat2(RENAME_EXCHANGE)``), so a process killed at any instant leaves
the complete old model or the complete new one at the path; elsewhere it falls back to two
renames. A run that writes a model holds a lock file beside it (`output_lock`), so a second run
on the same path is refused instead of racing it, and each save removes what a killed save left.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import glob
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from tiermem.errors import OutputError

if TYPE_CHECKING:
    import pandas as pd


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: Lock files this process holds, with how many nested `output_lock` calls hold each.
_HELD: dict[str, int] = {}


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


# -- checking an output path before the work that fills it ------------------------------------


def _nearest_existing(path: Path) -> Path:
    """`path` itself or the closest of its parents that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """Refuse, before any work, a file output that cannot be written: a directory, a path
    under a file, or a place this process may not create files in. Writes nothing."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file name to write")
    where = _nearest_existing(path.parent)
    if not where.is_dir():
        raise OutputError(f"{path}: cannot be written, {where} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=where, prefix=".tiermem-probe-")
    except OSError as exc:
        raise OutputError(
            f"{path}: cannot be written ({exc.strerror} when creating a file in {where})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path


def check_output_dir(out: str | os.PathLike[str], marker: str | None = None) -> Path:
    """Refuse an output directory that is a file, or (with `marker`, the file every model of
    this kind holds) a non-empty directory that is not such a model. Writes nothing."""
    out = Path(out)
    if out.is_symlink():  # swapping would replace the link, not the directory it points to
        raise OutputError(f"{out}: is a symbolic link; give the directory itself")
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"{out}: exists and is not a directory; refusing to overwrite")
        if marker is not None and not (out / marker).is_file() and any(out.iterdir()):
            raise OutputError(f"{out}: exists and is not a tiermem model directory; refusing to overwrite")
    where = _nearest_existing(out.parent)
    if not where.is_dir():
        raise OutputError(f"{out}: cannot be written, {where} is not a directory")
    return out


# -- one writer per model path ------------------------------------------------------------------


def lock_path(out: str | os.PathLike[str]) -> Path:
    """The lock file of output `out`: ``.<name>.lock`` beside it."""
    out = Path(os.path.abspath(out))
    return out.parent / f".{out.name}.lock"


def _acquire(path: Path, out: Path) -> int:
    """An open, exclusively flocked descriptor of the lock file at `path`."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"{out}: another tiermem process is writing this model (lock {path})") from None
        # The holder before us removes the file as it finishes: a lock taken on a file that is
        # no longer at `path` protects nothing, so try again on the current one.
        try:
            here, held = os.stat(path), os.fstat(fd)
            if (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def output_lock(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the lock of output `out` (creating its parent directories) for the whole block.

    A second process asking for the same output is refused in one line; the same process
    may nest the lock (a command holds it for its run, the save inside takes it again).
    The lock is freed when the process dies, even by SIGKILL, and its file removed on exit.
    """
    out = Path(out)
    path = lock_path(out)
    key = str(path)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield out
        finally:
            _HELD[key] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, out)
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot be written ({exc.strerror}: {exc.filename or path.parent})"
        ) from None
    _HELD[key] = 1
    try:
        yield out
    finally:
        del _HELD[key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


# -- model directories ------------------------------------------------------------------------


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """glibc's renameat2 (2.28 and later), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Swap the entries `a` and `b` in one atomic step; False where the system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # kernel or filesystem without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def _replace_dir(new: Path, out: Path) -> None:
    """Put directory `new` at `out`, which holds the old one; `new`'s path ends up free or
    holding the old directory (the caller removes it)."""
    if exchange(new, out):
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)  # put the old directory back before reporting the failure
        raise
    shutil.rmtree(old, ignore_errors=True)


def _old_copies(out: Path) -> list[Path]:
    """The old copies a save on the two-rename path set beside `out`, newest first."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.old-.+")
    found = [p for p in out.parent.glob(glob.escape(f".{out.name}.old-") + "*") if pattern.fullmatch(p.name)]
    return sorted(
        (p for p in found if p.is_dir() and not p.is_symlink()), key=lambda p: p.stat().st_mtime, reverse=True
    )


def _complete_old(out: Path, marker: str | None) -> list[Path]:
    """The old copies of `out` that hold a model: non-empty, with the `marker` file when given."""
    return [p for p in _old_copies(out) if any(p.iterdir()) and (marker is None or (p / marker).is_file())]


def restore_interrupted(out: str | os.PathLike[str], marker: str | None = None) -> Path | None:
    """Put back the complete old copy of `out` that a save killed between its two renames left
    beside it (only where the filesystem refuses the atomic swap): `out` is then missing and the
    old copy waits as ``.NAME.old-*``. Done before anything else by every save and load; returns
    the path restored, or None when there was nothing to restore. `marker`: the file every model
    of this kind holds (a copy without it is not restored)."""
    out = Path(out)
    if out.exists() or not _old_copies(out):
        return None
    with output_lock(out):
        olds = _complete_old(out, marker)  # an empty one was never filled
        if out.exists() or not olds:
            return None
        os.replace(olds[0], out)
        fsync_dir(out.parent)
    return out


def before_loading(path: str | os.PathLike[str], marker: str | None = None) -> None:
    """What every load of a saved directory does first: `restore_interrupted`; where that
    cannot be done (a read-only folder), one line naming the complete copy waiting beside it."""
    try:
        restore_interrupted(path, marker)
    except OSError as exc:
        copy = interrupted_copy(path, marker)
        if copy is None:
            raise
        raise OutputError(
            f"{path}: missing; an interrupted save left its complete previous copy at {copy} "
            f"(it could not be put back: {exc.strerror or exc}); rename it to {Path(path).name}"
        ) from None


def interrupted_copy(out: str | os.PathLike[str], marker: str | None = None) -> Path | None:
    """A complete old copy of a missing `out` (see `restore_interrupted`), for a message naming it."""
    out = Path(out)
    olds = [] if out.exists() else _complete_old(out, marker)
    return olds[0] if olds else None


def _leftovers(out: Path) -> list[Path]:
    """Directories that a killed save of `out` left beside it: the new copy it was building,
    the old copy it was replacing, and those of earlier tiermem versions (mkdtemp names)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:tmp-.+|old-.+|[a-z0-9_]{{8}})")
    candidates = out.parent.glob(glob.escape(f".{out.name}.") + "*")
    return [p for p in candidates if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]


def _fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(directory))


def write_dir_atomic(
    out: str | os.PathLike[str], write: Callable[[Path], None], *, marker: str | None = None
) -> Path:
    """Build a directory with `write(tmp)` beside `out`, then swap it into place.

    Whatever the instant a process is killed, `out` holds the complete old directory or the
    complete new one; a failed `write` leaves `out` untouched and removes the partial copy,
    and the next save removes the copies a killed one left. `marker` (see
    `check_output_dir`) keeps a directory that is not a model of this kind from being replaced.
    """
    out = Path(out)
    with output_lock(out):
        restore_interrupted(out, marker)  # never remove the last complete copy below
        check_output_dir(out, marker)
        for stale in _leftovers(out):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            _build_and_swap(out, write)
        except OSError as exc:  # a full disk, a permission: the old directory, if any, is still in place
            raise OutputError(f"{out}: could not be saved ({exc.strerror or exc})") from None
    return out


def _build_and_swap(out: Path, write: Callable[[Path], None]) -> None:
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; give the model the usual permissions
        write(tmp)
        _fsync_tree(tmp)
        if out.exists():
            _replace_dir(tmp, out)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():  # the partial copy, or the old directory after the swap
            shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(out.parent)


__all__ = [
    "atomic_write",
    "check_output_dir",
    "check_output_file",
    "exchange",
    "fsync_dir",
    "lock_path",
    "before_loading",
    "interrupted_copy",
    "output_lock",
    "restore_interrupted",
    "write_csv_atomic",
    "write_dir_atomic",
]

"""Process-wide compute settings chosen deliberately for small CPU machines.

Oversubscribing torch's intra-op pool (one pool per worker process on 2 cores) made
inference about 20x slower here, so every entry point calls `set_threads` once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def default_threads() -> int:
    """Threads for this process: TIERMEM_THREADS, else the cores this process may use."""
    env = os.environ.get("TIERMEM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


_requested: int | None = None


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads (and OpenCV's) to `n` (default: `default_threads()`); return n.

    Torch is not imported here (it costs ~650 MiB per process that only needs the low tier):
    if it is loaded its pool is resized now, otherwise `sync_threads` does it once a tier
    has imported torch. The environment is left alone so child processes are not affected.
    """
    global _requested
    n = n or default_threads()
    _requested = n
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:  # pragma: no cover
        pass
    return n


def sync_threads() -> None:
    """Re-apply the last `set_threads` (torch may have been imported since, by a tier module)."""
    if _requested is not None:
        set_threads(_requested)


@contextmanager
def threads_for(n: int) -> Iterator[int]:
    """`set_threads(n)` for the duration of a block, then the count requested before it."""
    before = _requested
    set_threads(n)
    try:
        yield n
    finally:
        set_threads(before)


def library_versions() -> dict[str, str]:
    """Versions of tiermem and the libraries its saved files depend on, without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("tiermem", "torch", "numpy", "scikit-learn", "safetensors"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out

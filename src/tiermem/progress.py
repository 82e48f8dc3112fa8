"""Progress of a long scoring call, for whoever runs it outside a terminal (the HTTP service).

Rich progress bars show progress to a person at a terminal. A service's worker process needs
the same figures as numbers: it sets a listener for the duration of a call with `listening`,
and the timeline scan reports the share of the video processed through `report`.

    >>> with listening(lambda share: print(f"{share:.0%}")):
    ...     model.predict("advert.mp4")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: Called with the share of the current video processed, from 0 to 1.
Listener = Callable[[float], None]

_listener: ContextVar[Listener | None] = ContextVar("tiermem_progress_listener", default=None)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send progress reports to `listener` while the block runs (this thread and context only)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def report(share: float) -> None:
    """Tell the listener, if any, that `share` (0 to 1) of the current video is processed."""
    listener = _listener.get()
    if listener is not None:
        listener(min(1.0, max(0.0, float(share))))


__all__ = ["Listener", "listening", "report"]

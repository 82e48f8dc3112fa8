"""Loaded networks shared across tier instances of one process.

`extract` builds fresh tier objects on every call (e.g. each `Pipeline.predict`); without this
cache a warm process rebuilt EfficientNet-Lite0 and ResMem every time (~1.1 s for ResMem
alone). Networks are in eval mode and never mutated, so sharing them is safe. The key holds
the weights' identity (content hash for a local file), so a changed file is reloaded.

The networks are released when the interpreter exits, before torch tears itself down: that
teardown touches about 120 MB of torch's libraries, which would otherwise add to the memory
the networks still hold (the peak of a one-off `tiermem predict` was set there).
"""

from __future__ import annotations

import atexit
import gc
import threading
from typing import Any, Callable, TypeVar

from tiermem.backbones.weights import weights_identity

T = TypeVar("T")

_LOADED: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def shared_network(kind: str, name: str, weights: Any, load: Callable[[], T]) -> T:
    """`load()` once per (kind, name, weights identity) in this process; later calls reuse it."""
    # The path as well as the content: the loaded Backbone records which file it came from.
    key = (kind, name, str(weights), weights_identity(weights) if weights is not None else "random-init")
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]


@atexit.register
def release_networks() -> None:
    """Drop every shared network (and what only it referenced) now rather than at teardown."""
    with _LOCK:
        _LOADED.clear()
    gc.collect()

"""Heatmaps for the API (`GET /v1/jobs/{id}/heatmap`), computed in the server process.

A map is asked for one moment at a time, on request, while the workers score whole videos:
the server loads its own copy of the model at the first request (a few seconds, the memory of
one more worker) and computes one map at a time; the last few maps are kept, so the JSON and
the PNG of one moment cost one computation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from tiermem.serve.settings import ServeSettings

#: Maps kept: the peak, trough and hook of a few videos.
KEPT = 16


class Heatmaps:
    """The server's heatmap maker for `settings.model`."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self._model: Any = None
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, float, int], Any] = OrderedDict()

    def get(self, video: Path, key: str, t: float, grid: int) -> Any:  # -> tiermem.heatmap.Heatmap
        """The map of `video` (stored under `key`, its content hash) at `t` seconds."""
        wanted = (key, round(t, 2), grid)
        with self._lock:
            if wanted in self._kept:
                self._kept.move_to_end(wanted)
                return self._kept[wanted]
            from tiermem.run import Run

            if self._model is None:
                from tiermem.models import load
                from tiermem.runtime import set_threads

                set_threads(self.settings.threads_per_worker)
                self._model = load(self.settings.model)
            made = self._model.heatmap(video, t, grid=grid, run=Run(device=self.settings.device))
            self._kept[wanted] = made
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
            return made


__all__ = ["Heatmaps"]

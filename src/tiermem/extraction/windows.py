"""Windows over a long video, scored from one streaming pass (`scan`).

Window k covers [k * stride, k * stride + length) seconds and is sampled exactly as a clip of
`length` seconds is (`tiermem.video.decode`): `frames` times at the centres of equal segments,
each taking the frame on screen at that moment. All windows' times lie on one time grid when
the stride is a whole number of sampling steps (length / frames), so overlapping windows read
the same decoded frames. The file is decoded once, start to end. Each frame on the grid is
converted once, its per-frame tier work (`tiermem.tiers.per_frame`) runs once, and each
window then only aggregates; tiers that work on whole clips (the high tier's video network)
run once per window on its frames. Frames and their work are dropped as soon as no pending
window holds them, so memory stays flat however long the video is.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tiermem.errors import TiermemError
from tiermem.tiers.base import Tier
from tiermem.tiers.per_frame import FrameTier
from tiermem.video.clip import Clip
from tiermem.video.decode import ResizeMode, decode
from tiermem.video.stream import StreamBrokenError, VideoStream, to_square

#: Windows aggregated together: per-frame network work is batched over their new frames. Four,
#: not eight: a low+mid timeline of a 60-s 720p video peaked at 1244 instead of 1469 MiB, in the
#: same time (benchmarks/throughput.py).
BATCH_WINDOWS = 4
#: About how far apart windows start by default, in seconds (snapped to shared frames).
DEFAULT_STRIDE = 1.0


@dataclass(frozen=True)
class WindowPlan:
    """Window `length` and `stride` in seconds, `frames` sampled per window."""

    length: float
    stride: float
    frames: int

    @property
    def step(self) -> float:
        """Seconds between a window's sampled frames."""
        return self.length / self.frames

    def start(self, k: int) -> float:
        return k * self.stride

    def times(self, k: int) -> np.ndarray:
        return self.start(k) + (np.arange(self.frames) + 0.5) * self.step


def check_seconds(name: str, value: float, duration: float | None = None, path: str = "") -> None:
    """A window length or stride must be a positive number of seconds, within the video."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise TiermemError(f"--{name} must be a positive number of seconds, got {value}")
    if duration is not None and duration > 0 and value > duration:
        raise TiermemError(f"{path}: --{name} {value:g} s is longer than the video ({duration:.2f} s)")


def default_stride(length: float, frames: int, tiers: dict[str, Tier]) -> float:
    """About `DEFAULT_STRIDE` seconds, rounded to a whole number of the periods of the frames the
    tiers read, so that every window reads the same grid frames as its neighbours.

    With 45 frames per 3-s window, the mid and prior tiers read every 9th frame (0.6 s apart):
    a 1.2-s stride shares all their frames between windows, where a 1.0-s stride would need
    new ones for every window, three times the network work.
    """
    period = 1
    for tier in tiers.values():
        if isinstance(tier, FrameTier):
            period = int(np.lcm(period, tier.reads(frames).period()))
    unit = period * length / frames
    return max(1, round(DEFAULT_STRIDE / unit)) * unit


@dataclass
class WindowFeatures:
    """What a scan gives: per window its span, each tier's feature vector and facts."""

    path: str
    starts: np.ndarray
    ends: np.ndarray
    values: dict[str, np.ndarray]  # tier -> (windows, features)
    facts: list[dict[str, Any]]  # per window: tier -> facts
    duration: float  # seconds decoded
    note: str = ""  # said to the user (a video shorter than one window)
    broken: StreamBrokenError | None = None  # decoding stopped here; the windows before it stand


@dataclass
class _Pending:
    """A window waiting for its frames: the key of the frame shown at each sampled time."""

    k: int
    keys: np.ndarray
    filled: int = 0
    frame_times: np.ndarray = field(default_factory=lambda: np.zeros(0))


def scan(
    path: str | Path,
    tiers: dict[str, Tier],
    plan: WindowPlan,
    *,
    size: int,
    mode: ResizeMode,
    threads: int = 0,
    on_progress: Callable[[float], None] | None = None,
    windows: tuple[int, int | None] = (0, None),
) -> WindowFeatures:
    """Every window's features of `tiers` from one decoding pass over `path` (see the module).

    `windows` (first, last): only windows first up to last (exclusive; None: to the end), the
    pass starting at the keyframe before the first and ending with the last window (one
    stretch of the video, `tiermem.extraction.timelines`)."""
    return _Scan(str(path), tiers, plan, size, mode).run(threads, on_progress, windows)


class _Scan:
    def __init__(
        self, path: str, tiers: dict[str, Tier], plan: WindowPlan, size: int, mode: ResizeMode
    ) -> None:
        self.path, self.tiers, self.plan, self.size, self.mode = path, tiers, plan, size, mode
        self.reads = {n: t.reads(plan.frames) for n, t in tiers.items() if isinstance(t, FrameTier)}
        self.heap: list[tuple[float, int, int]] = []  # (time, window, position)
        self.pending: dict[int, _Pending] = {}
        self.images: dict[int, np.ndarray] = {}  # frame key -> (size, size, 3) uint8
        self.times: dict[int, float] = {}  # frame key -> time shown
        self.work: dict[tuple[str, str], dict[Any, np.ndarray]] = {}  # (tier, computation) -> key -> result
        self.next_window = 0
        self.rows: list[tuple[int, dict[str, np.ndarray], dict[str, Any]]] = []

    def run(
        self, threads: int, on_progress: Callable[[float], None] | None, windows: tuple[int, int | None]
    ) -> WindowFeatures:
        first, last = windows
        video = VideoStream(self.path, threads=threads, start=self.plan.start(first))
        self.video = video
        self.next_window = first
        tol = 1e-3 / video.fps
        prev: tuple[float, Any, int] | None = None
        broken: StreamBrokenError | None = None
        try:
            for key, (time, frame) in enumerate(video.frames()):
                while (last is None or self.next_window < last) and self.plan.start(self.next_window) <= time:
                    self._schedule(self.next_window)
                    self.next_window += 1
                if prev is not None:
                    self._serve(prev, lambda t: t + tol < time)
                prev = (time, frame, key)
                ready = self._ready(time + 1.0 / video.fps)
                done = last is not None and self.next_window >= last and len(ready) == len(self.pending)
                self._process(ready, keep={key}, final=done)
                if on_progress is not None:
                    on_progress(time)
                if done:  # the stretch's last window is in: the rest of the video is another's
                    break
        except StreamBrokenError as exc:
            broken = exc
        duration = video.duration
        if prev is not None:  # the last frame stays on screen to the end of the video
            self._serve(prev, lambda t: True)
        self._process(self._ready(duration), keep=set(), final=True)
        if not self.rows and broken is None and first == 0:
            return self._short_video(threads, duration)
        return self._result(duration, broken)

    # -- the time grid -------------------------------------------------------------------
    def _schedule(self, k: int) -> None:
        times = self.plan.times(k)
        self.pending[k] = _Pending(k, np.full(len(times), -1, np.int64), frame_times=np.zeros(len(times)))
        for i, t in enumerate(times):
            heapq.heappush(self.heap, (float(t), k, i))

    def _serve(self, prev: tuple[float, Any, int], shown: Callable[[float], bool]) -> None:
        """Give `prev` (the frame on screen until the next one) to every time it covers."""
        time, frame, key = prev
        while self.heap and shown(self.heap[0][0]):
            _, k, i = heapq.heappop(self.heap)
            if key not in self.images:
                self.images[key] = to_square(frame, self.size, self.mode)
                self.times[key] = time
            window = self.pending[k]
            window.keys[i] = key
            window.frame_times[i] = time - self.plan.start(k)
            window.filled += 1

    def _ready(self, end_at_least: float) -> list[_Pending]:
        """Windows with every frame in hand that end within the video decoded so far."""
        return [
            w
            for w in self.pending.values()
            if w.filled == self.plan.frames and self.plan.start(w.k) + self.plan.length <= end_at_least + 1e-6
        ]

    # -- per-frame work, then per-window aggregation -------------------------------------
    def _process(self, ready: list[_Pending], keep: set[int], final: bool) -> None:
        if not ready or (len(ready) < BATCH_WINDOWS and not final):
            return
        if not self.rows:  # the frames suit every tier (size, fitted state): checked once
            sample = self.images[int(ready[0].keys[0])][None]
            for tier in self.tiers.values():
                if isinstance(tier, FrameTier):
                    tier.check_frames(sample, self.path)
        for name, reads in self.reads.items():
            tier = self.tiers[name]
            assert isinstance(tier, FrameTier)
            for job, idx in reads.frames.items():
                cache = self.work.setdefault((name, job), {})
                todo = list(dict.fromkeys(int(k) for w in ready for k in w.keys[idx] if int(k) not in cache))
                if todo:
                    results = tier.run_frames(job, np.stack([self.images[k] for k in todo]))
                    cache.update(zip(todo, results))
            for job, idx in reads.pairs.items():
                cache = self.work.setdefault((name, job), {})
                pairs = [(int(a), int(b)) for w in ready for a, b in zip(w.keys[idx], w.keys[idx + 1])]
                todo = list(dict.fromkeys(p for p in pairs if p not in cache))
                if todo:
                    first = np.stack([self.images[a] for a, _ in todo])
                    second = np.stack([self.images[b] for _, b in todo])
                    cache.update(zip(todo, tier.run_pairs(job, first, second)))
        whole = [n for n in self.tiers if n not in self.reads]
        clips = [self._clip(w) for w in ready] if whole else []
        whole_results = {n: self.tiers[n].transform_batch(clips) for n in whole}
        for j, w in enumerate(ready):
            values: dict[str, np.ndarray] = {}
            facts: dict[str, Any] = {}
            meta = self._meta(w)
            for name, reads in self.reads.items():
                tier = self.tiers[name]
                assert isinstance(tier, FrameTier)
                work = {
                    job: np.stack([self.work[(name, job)][int(k)] for k in w.keys[idx]])
                    for job, idx in reads.frames.items()
                }
                work.update(
                    {
                        job: np.stack(
                            [
                                self.work[(name, job)][(int(a), int(b))]
                                for a, b in zip(w.keys[idx], w.keys[idx + 1])
                            ]
                        )
                        if len(idx)
                        else np.zeros((0,), np.float32)
                        for job, idx in reads.pairs.items()
                    }
                )
                values[name], facts[name] = tier.aggregate(work, meta, w.frame_times)
            for name, result in whole_results.items():
                values[name], facts[name] = result.values[j], result.facts[j] if result.facts else {}
            self.rows.append((w.k, values, {n: f for n, f in facts.items() if f}))
            del self.pending[w.k]
        self._forget(keep)

    def _meta(self, w: _Pending):  # -> VideoMeta of the window
        start = self.plan.start(w.k)
        count, size = self.video.packets_between(start, start + self.plan.length)
        return self.video.meta(self.plan.length, size, count)

    def _clip(self, w: _Pending) -> Clip:
        frames = np.stack([self.images[int(k)] for k in w.keys])
        return Clip(frames=frames, times=w.frame_times.copy(), meta=self._meta(w))

    def _forget(self, keep: set[int]) -> None:
        """Drop frames, their work and packets that no pending window can read any more."""
        alive = set(keep)
        for w in self.pending.values():
            alive.update(int(k) for k in w.keys if k >= 0)
        for key in [k for k in self.images if k not in alive]:
            del self.images[key], self.times[key]
        for cache in self.work.values():
            for key in [k for k in cache if (k if isinstance(k, tuple) else (k,))[0] not in alive]:
                del cache[key]
        first = min((w.k for w in self.pending.values()), default=self.next_window)
        self.video.forget_before(self.plan.start(first))

    # -- results -------------------------------------------------------------------------
    def _short_video(self, threads: int, duration: float) -> WindowFeatures:
        """A video shorter than one window is one window: the whole video, sampled as a clip."""
        clip = decode(self.path, frames=self.plan.frames, size=self.size, mode=self.mode, threads=threads)
        values, facts = {}, {}
        for name, tier in self.tiers.items():
            result = tier.transform_batch([clip])
            values[name] = result.values
            if result.facts and result.facts[0]:
                facts[name] = result.facts[0]
        note = (
            f"the video ({clip.meta.duration:.2f} s) is shorter than one {self.plan.length:g}-s window: "
            "one window covers all of it"
        )
        return WindowFeatures(
            self.path,
            np.array([0.0]),
            np.array([clip.meta.duration]),
            values,
            [facts],
            clip.meta.duration,
            note=note,
        )

    def _result(self, duration: float, broken: StreamBrokenError | None) -> WindowFeatures:
        self.rows.sort(key=lambda r: r[0])
        starts = np.array([self.plan.start(k) for k, _, _ in self.rows], dtype=np.float64)
        dims = {n: len(t.feature_names) for n, t in self.tiers.items()}
        values = {
            n: np.stack([v[n] for _, v, _ in self.rows]).astype(np.float32)
            if self.rows
            else np.zeros((0, dims[n]), np.float32)
            for n in self.tiers
        }
        return WindowFeatures(
            self.path,
            starts,
            starts + self.plan.length,
            values,
            [f for _, _, f in self.rows],
            duration,
            broken=broken,
        )


__all__ = ["BATCH_WINDOWS", "WindowFeatures", "WindowPlan", "check_seconds", "default_stride", "scan"]

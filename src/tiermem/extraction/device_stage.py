"""The device stage: one owner per device runs the network tiers on batches gathered across videos.

Decoding and the low tier's per-frame work run in worker processes (or threads) that never
touch the device; each decoded clip that still needs a network tier is handed to the stage,
which holds the device's networks once. Its thread gathers the clips waiting in its queue into
one batch, up to `max_clips` clips or `max_wait` seconds after the first arrived (a size limit
and a latency limit), and runs each network tier once on the whole batch:

* a tier split into per-frame work (`FrameTier`: mid, faces, prior) gets the frames it reads of
  every clip of the batch in one `run_frames` call (so its network sees frames of many videos
  per forward pass, in the tier's `frame_batch` chunks), then aggregates each clip alone;
* a tier that works on whole clips (the high tier's video network) gets the batch's clips.

On the CPU (`mix` False, the default there) each clip of a batch still runs alone: batching
across clips was slower there (mid tier: 119 against 66 ms a clip), and a clip's features then
equal the clip-by-clip path's bit for bit. The stage still pays on the CPU in one process: the
networks run in its thread while the calling thread decodes and runs the low tier.

The queue is bounded (`capacity` clips): when the device falls behind, `submit` blocks, the
caller stops taking decoded clips, and the decode workers wait, so memory stays flat.

Mixed batches give the clip-by-clip path's features up to float32 round-off: a network's
output for one frame can change in its last bits with the frames batched beside it (mixed on
the CPU here: mid within 2.3e-6, prior 1.8e-7, `tests/test_device_stage.py`).

Failures stay with their videos. When a batch fails with a `TiermemError` (one clip's frames
do not suit the tier) or a `RuntimeError` (the device ran out of memory, a kernel failed), each
of its clips runs again alone and only those that still fail are failed, with the reason.
Weights that cannot load (`MissingWeightsError`) fail every waiting clip with that error, and
the run stops once; anything else is a bug, reaches the caller and stops the run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from tiermem.errors import MissingWeightsError, TiermemError, VideoDecodeError
from tiermem.tiers.base import Tier
from tiermem.tiers.per_frame import FrameTier, Work
from tiermem.video.clip import Clip

#: Clips per device batch by default (the size limit).
MAX_CLIPS = 32
#: Seconds the stage waits for more clips after the first of a batch arrived (the latency limit).
MAX_WAIT_S = 0.02


@dataclass
class StageResult:
    """What the stage gives back for one clip: values and facts by tier, reasons of failure."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    batch: int = 0  # clips in the batch it ran in


@dataclass
class _Request:
    clip: Clip
    tiers: tuple[str, ...]
    future: Future[StageResult]


_STOP = None


class DeviceStage:
    """The owner of one device's network tiers; a context manager that starts and ends its thread.

    `tiers`: the network tiers, already placed on the device (`Tier.on`). `max_clips` and
    `max_wait`: the batch's size and latency limits. `capacity`: clips that may wait in the
    queue (default: two batches). `mix`: whether a network's batch holds frames of several
    clips (default: when a tier runs off the CPU).
    """

    def __init__(
        self,
        tiers: Mapping[str, Tier],
        max_clips: int = MAX_CLIPS,
        max_wait: float = MAX_WAIT_S,
        capacity: int | None = None,
        mix: bool | None = None,
    ) -> None:
        if max_clips < 1 or max_wait < 0:
            raise TiermemError(
                f"device stage: max_clips must be >= 1 and max_wait >= 0 (got {max_clips}, {max_wait})"
            )
        self.tiers = dict(tiers)
        self.max_clips = max_clips
        self.max_wait = max_wait
        self.capacity = capacity if capacity is not None else 2 * max_clips
        self.mix = mix if mix is not None else any(t.device != "cpu" for t in self.tiers.values())
        #: Clips in each batch run so far (a benchmark reads how full the batches were).
        self.batch_sizes: list[int] = []
        self._queue: queue.Queue[_Request | None] = queue.Queue(maxsize=self.capacity)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "DeviceStage":
        self._thread = threading.Thread(target=self._serve, name="tiermem-device-stage", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread is None:
            return
        if kind is not None:  # stopping on an error: what still waits is dropped
            self._drain(exc or TiermemError("the run stopped"))
        self._put(_STOP)
        self._thread.join()
        self._thread = None

    def submit(self, clip: Clip, tiers: Sequence[str]) -> Future[StageResult]:
        """The results of `tiers` (names among the stage's) on `clip`, when its batch has run.

        Blocks while the queue is full: a slow device throttles whoever feeds it.
        """
        unknown = [n for n in tiers if n not in self.tiers]
        if unknown:
            raise TiermemError(f"device stage: no tier {', '.join(unknown)} here")
        future: Future[StageResult] = Future()
        self._put(_Request(clip, tuple(tiers), future))
        return future

    def _put(self, item: _Request | None) -> None:
        while True:
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError("the device stage is not running")
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _drain(self, exc: BaseException) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and not item.future.done():
                item.future.set_exception(exc)

    # -- the stage's own thread ---------------------------------------------------------------
    def _serve(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_clips:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        """Every tier once on the clips of `batch` that asked for it; results to their futures."""
        self.batch_sizes.append(len(batch))
        results = [StageResult(batch=len(batch)) for _ in batch]
        try:
            for name, tier in self.tiers.items():
                members = [k for k, r in enumerate(batch) if name in r.tiers]
                if members:
                    self._through(name, tier, [batch[k].clip for k in members], [results[k] for k in members])
        except BaseException as exc:  # weights that cannot load, or a bug: the caller stops the run
            for r in batch:
                r.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for r, result in zip(batch, results):
            r.future.set_result(result)

    def _through(self, name: str, tier: Tier, clips: list[Clip], results: list[StageResult]) -> None:
        if not self.mix and len(clips) > 1:
            for clip, result in zip(clips, results):
                self._through(name, tier, [clip], [result])
            return
        try:
            values, facts = batched_features(tier, clips)
        except MissingWeightsError:
            raise
        except (TiermemError, RuntimeError) as exc:
            if len(clips) == 1:
                results[0].errors.append(f"tier {name}: {_reason(exc)}")
                return
            for clip, result in zip(clips, results):  # alone, so one clip's failure stays its own
                self._through(name, tier, [clip], [result])
            return
        for k, result in enumerate(results):
            result.values[name] = values[k]
            result.facts[name] = facts[k]


def _reason(exc: Exception) -> str:
    """The cause in one line (a device error's first line: CUDA's run on for several)."""
    if isinstance(exc, VideoDecodeError):
        return exc.cause
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def batched_features(tier: Tier, clips: Sequence[Clip]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(N, D) float32 features and facts of `clips` with the tier's per-frame work batched across them."""
    if not isinstance(tier, FrameTier):
        result = tier.transform_batch(clips)
        facts = list(result.facts) + [{} for _ in range(len(clips) - len(result.facts))]
        return np.asarray(result.values, np.float32), facts
    for clip in clips:
        tier.check_frames(clip.frames, clip.meta.path)
    plans = [tier.reads(clip.num_frames) for clip in clips]
    work: list[Work] = [{} for _ in clips]
    for name in plans[0].frames:
        picked = [clip.frames[plan.frames[name]] for clip, plan in zip(clips, plans)]
        _split(tier.run_frames(name, np.concatenate(picked)), [len(p) for p in picked], name, work)
    for name in plans[0].pairs:
        index = [plan.pairs[name] for plan in plans]
        first = np.concatenate([clip.frames[i] for clip, i in zip(clips, index)])
        second = np.concatenate([clip.frames[i + 1] for clip, i in zip(clips, index)])
        _split(tier.run_pairs(name, first, second), [len(i) for i in index], name, work)
    rows, facts = [], []
    for clip, clip_work in zip(clips, work):
        values, clip_facts = tier.aggregate(clip_work, clip.meta, clip.times)
        rows.append(values)
        facts.append(clip_facts)
    return np.stack(rows).astype(np.float32), facts


def _split(rows: np.ndarray, counts: list[int], name: str, work: list[Work]) -> None:
    for clip_work, part in zip(work, np.split(rows, np.cumsum(counts)[:-1])):
        clip_work[name] = part


__all__ = ["MAX_CLIPS", "MAX_WAIT_S", "DeviceStage", "StageResult", "batched_features"]

"""Tiers whose work splits into per-frame computations and a clip-level aggregation.

A clip's T sampled frames go through a tier in two steps:

1. *per frame* (and *per pair* of consecutive sampled frames): the expensive work, such as
   colour statistics, HOG, optical flow, image-network embeddings, faces and ResMem. Each
   computation has a name and reads a fixed subset of the T frames (`FrameReads`).
2. *aggregate*: the clip's feature vector (means, stds, counts ...) from those results, cheap.

Scoring one clip runs both steps on its frames (`FrameTier.transform_batch`). A timeline over a
long video runs step 1 once per decoded frame of its time grid and step 2 once per window, so
overlapping windows share every frame's work (`tiermem.timeline`). Both paths call the same
functions, so a window scores exactly as the same stretch of video cut out as its own clip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tiermem.tiers.base import Tier, TierResult
from tiermem.video.clip import Clip, VideoMeta

#: Per-frame and per-pair results, by computation name; rows follow the indices of `FrameReads`.
Work = dict[str, np.ndarray]


@dataclass(frozen=True)
class FrameReads:
    """Which of a clip's T sampled frames each computation reads.

    `frames[name]`: indices in [0, T) of the frames a per-frame computation reads.
    `pairs[name]`: indices i of the consecutive pairs (i, i + 1) a per-pair computation reads.
    """

    frames: dict[str, np.ndarray]
    pairs: dict[str, np.ndarray] = field(default_factory=dict)

    def period(self) -> int:
        """The smallest shift (in sampled frames) that maps every read set onto itself, away from
        its ends: windows whose starts differ by a multiple of it share all their frame work."""
        period = 1
        for indices in [*self.frames.values(), *self.pairs.values()]:
            steps = np.diff(np.unique(indices))
            step = int(np.gcd.reduce(steps)) if len(steps) else 1
            period = int(np.lcm(period, max(step, 1)))
        return period


@dataclass
class DeferredClip:
    """A clip's frame work done before its tier was fitted (`Tier.defer`).

    `work` holds the per-frame results with the fitted step left out, `fit_rows` what the clip
    gives the fit (None once the fit has them); `Tier.complete` turns it into the clip's features once the tier is fitted.
    Plain arrays and a `VideoMeta`: it travels from a worker process like any outcome.
    """

    work: Work
    meta: VideoMeta
    times: np.ndarray
    fit_rows: np.ndarray | None


class FrameTier(Tier):
    """Base of the tiers split into `per_frame`/`per_pair` work and `aggregate`.

    Subclasses implement `reads`, `per_frame`, `aggregate` and, when they compare consecutive
    frames, `per_pair`. `frame_batch` bounds how many frames one `per_frame` call receives.
    """

    frame_batch: ClassVar[int] = 64

    def reads(self, num_frames: int) -> FrameReads:
        raise NotImplementedError

    def per_frame(self, name: str, frames: np.ndarray) -> np.ndarray:
        """Results (M, ...) of computation `name` for (M, H, W, 3) uint8 RGB frames."""
        raise NotImplementedError

    def per_pair(self, name: str, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Results (M, ...) of computation `name` for M pairs of (H, W, 3) frames."""
        raise NotImplementedError(f"{self.name} tier has no per-pair computation {name!r}")

    def aggregate(self, work: Work, meta: VideoMeta, times: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """The clip's feature vector and facts from its frames' work; `times` are the clip's
        sampled frame times in seconds from its start, `meta` describes the clip."""
        raise NotImplementedError

    def check_frames(self, frames: np.ndarray, path: str) -> None:
        """Raise a `TiermemError` naming `path` when its (T, H, W, 3) frames do not suit this tier."""

    # -- scoring whole clips --------------------------------------------------------------
    def transform(self, clip: Clip) -> np.ndarray:
        return self.transform_batch([clip]).values[0]

    def transform_batch(self, clips: Sequence[Clip]) -> TierResult:
        """Both steps on each clip's frames, clip by clip.

        Each clip's per-frame work runs on its own frames in `frame_batch` chunks counted from
        its first frame, never in a batch shared with other clips: a network's output for one
        frame can change in the last bits with the batch it sits in, and a video's features
        must not depend on the videos extracted beside it (a rerun or a resume gives the same
        bytes). Batching across clips was also no faster on the CPU (mid tier, 12 clips of 5
        frames, 2 threads: 119 ms per clip batched, 66 ms clip by clip).
        """
        if not clips:
            return TierResult(np.zeros((0, len(self.feature_names)), np.float32), [])
        for clip in clips:
            self.check_frames(clip.frames, clip.meta.path)
        rows, facts = [], []
        for clip in clips:
            values, clip_facts = self.aggregate(self.clip_work(clip.frames), clip.meta, clip.times)
            rows.append(values)
            facts.append(clip_facts)
        return TierResult(values=np.stack(rows).astype(np.float32), facts=facts)

    def clip_work(self, frames: np.ndarray, computations: Mapping[str, str] | None = None) -> Work:
        """Every per-frame and per-pair computation of one clip's (T, H, W, 3) frames.

        `computations`: the `per_frame` computation run for a read, by read name, where it is
        not the read's own (a tier that defers part of a computation until it is fitted).
        """
        plan = self.reads(len(frames))
        chosen = dict(computations or {})
        work: Work = {
            name: self.run_frames(chosen.get(name, name), Picked(frames, idx))
            for name, idx in plan.frames.items()
        }
        for name, idx in plan.pairs.items():
            work[name] = self.run_pairs(name, Picked(frames, idx), Picked(frames, idx + 1))
        return work

    def run_frames(self, name: str, frames: "Picked | np.ndarray") -> np.ndarray:
        """`per_frame` over any number of frames, `frame_batch` at a time (bounded memory)."""
        b = self.frame_batch
        parts = [self.per_frame(name, frames[i : i + b]) for i in range(0, len(frames), b)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def run_pairs(self, name: str, first: "Picked | np.ndarray", second: "Picked | np.ndarray") -> np.ndarray:
        """`per_pair` over any number of pairs, `frame_batch` at a time."""
        b = self.frame_batch
        parts = [self.per_pair(name, first[i : i + b], second[i : i + b]) for i in range(0, len(first), b)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


class Picked:
    """`frames[index]` copied a slice at a time, when a slice of it is asked for (no full copy)."""

    def __init__(self, frames: np.ndarray, index: np.ndarray) -> None:
        self.frames = frames
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, span: slice) -> np.ndarray:
        return self.frames[self.index[span]]


class WorkClock:
    """Adds the wall time of each `with clock(name):` block of per-frame work to
    `timings[name]`, when a benchmark passes `timings`; does nothing otherwise."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


__all__ = ["DeferredClip", "FrameReads", "FrameTier", "Picked", "Work", "WorkClock"]

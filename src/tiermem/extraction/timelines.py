"""Timelines on the run's workers: a long video's windows split into stretches of consecutive
windows, each scanned by one worker, so that one video keeps every worker of the run busy.

    features = window_features(path, tiers, plan, size=256, mode="stretch", run=Run(workers=4), store=state_dir)

A stretch is what `tiermem.extraction.windows.scan` does for a whole video, over part of it: the
worker seeks to the keyframe before the stretch's first window and decodes until its last
window ends. Neighbouring stretches therefore decode at most one window and one keyframe
interval twice (a 60-s video in 2 stretches of 3-s windows: about 6% more decoding). With one
worker, or too few windows to share (`MIN_WINDOWS_PER_STRETCH` each), the video is scanned here
in one pass, reporting its progress as it goes; stretches report theirs as each one ends.

A window's features do not depend on which worker computed it (to the float32 round-off of a
network's batch and thread count, ~1e-9 on a score). A stretch whose stream breaks keeps its
windows before the break, and the windows after the break are dropped, whichever stretch they
were in: the timeline ends where decoding failed, as it does in one pass. A worker that dies ends the timeline at the start of
its stretch in the same way, with the worker's death as the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiermem.errors import VideoDecodeError
from tiermem.extraction.pool import WorkerDied, WorkerPool, worker_state
from tiermem.extraction.ray_pool import RayPool
from tiermem.extraction.windows import WindowFeatures, WindowPlan, scan
from tiermem.extraction.workers import TierSpec, worker_tiers
from tiermem.run import Run
from tiermem.runtime import default_threads, threads_for
from tiermem.tiers.base import Tier
from tiermem.video.decode import ResizeMode
from tiermem.video.stream import StreamBrokenError

#: Fewest windows a stretch holds. Each worker starts cold (imports torch, loads the networks:
#: about 5 s here) and neighbours decode their overlap twice, so a stretch must hold that much
#: work: a low+mid model scans about 5 windows a second here. Measured on 2 cores, 720p, low+mid:
#: a 60-s video (48 windows) took 8.5 s in one pass and 10.0 s on two workers; a 10-min one
#: (498 windows) 80 s in one pass and 62.5 s on two (benchmarks/throughput.py).
MIN_WINDOWS_PER_STRETCH = 30


@dataclass(frozen=True)
class Stretch:
    """Windows `first` up to `last` (exclusive; None: to the end of the video) of one video."""

    path: str
    plan: WindowPlan
    size: int
    mode: ResizeMode
    first: int
    last: int | None


def stretches(
    path: Path, plan: WindowPlan, workers: int, size: int, mode: ResizeMode, declared: float | None
) -> list[Stretch]:
    """The video's windows in at most `workers` stretches of at least `MIN_WINDOWS_PER_STRETCH`
    windows each, by the duration the container declares (the last stretch runs to the end)."""
    declared = declared or 0.0
    count = math.floor((declared - plan.length) / plan.stride + 1e-9) + 1 if declared >= plan.length else 1
    parts = max(1, min(workers, count // MIN_WINDOWS_PER_STRETCH))
    bounds = np.linspace(0, count, parts + 1).round().astype(int).tolist()
    return [
        Stretch(str(path), plan, size, mode, bounds[j], bounds[j + 1] if j < parts - 1 else None)
        for j in range(parts)
    ]


def window_features(
    path: Path,
    tiers: dict[str, Tier],
    plan: WindowPlan,
    *,
    size: int,
    mode: ResizeMode,
    run: Run,
    store: str | None,
    declared: float | None = None,
    on_seconds: Callable[[float], None] | None = None,
) -> WindowFeatures:
    """Every window's features of `tiers` over `path`, scanned by `run`'s workers.

    `store`: where the workers read the tiers' fitted state (``<tier>.state.npz``; a model's
    state directory), None when no tier is fitted. `declared`: the duration the container
    declares (`declared_duration`), which plans the stretches. `on_seconds` hears how many
    seconds of the video are done.
    """
    parts = stretches(path, plan, run.workers, size, mode, declared)
    if len(parts) == 1:
        return scan(path, tiers, plan, size=size, mode=mode, on_progress=on_seconds)
    device = run.device_for(tiers.values())
    threads = max(1, default_threads() // run.workers)
    engine = run.cluster
    with ExitStack() as stack:
        stack.enter_context(threads_for(threads))
        pool = stack.enter_context(
            run.workers_for(("timeline", run.workers, threads, engine), lambda: _new_pool(run, threads))
        )
        fitted = {n: t.state_dict() for n, t in tiers.items() if t.requires_fit}
        spec = TierSpec.of(
            tiers, store or "", device, pool.share(fitted) if isinstance(pool, RayPool) else None
        )
        found: dict[int, WindowFeatures] = {}
        for i, result in pool.imap(_scan_stretch, [(spec, part) for part in parts], ahead=len(parts)):
            found[i] = (
                _ended(parts[i], result.reason, "the timeline stopped")
                if isinstance(result, WorkerDied)
                else result
            )
            if on_seconds is not None:
                on_seconds(max(f.duration for f in found.values()))
    joined = _joined([found[i] for i in range(len(parts))])
    for name, tier in tiers.items():  # a tier with no window at all still has its columns
        joined.values.setdefault(name, np.zeros((0, len(tier.feature_names)), np.float32))
    return joined


def _new_pool(run: Run, threads: int) -> WorkerPool | RayPool:
    engine = run.cluster
    if engine.name == "ray":
        return RayPool(
            run.workers,
            {},
            max(1, int(engine.cpus_per_worker)),
            engine.address,
            cpus=engine.cpus_per_worker,
            gpus=engine.gpus_per_worker,
        )
    return WorkerPool(run.workers, {}, threads)


def _scan_stretch(spec: TierSpec, part: Stretch) -> WindowFeatures:
    """A worker's task: scan one stretch of the video."""
    try:
        return scan(
            part.path,
            worker_tiers(spec),
            part.plan,
            size=part.size,
            mode=part.mode,
            threads=worker_state()["threads"],
            windows=(part.first, part.last),
        )
    except VideoDecodeError as exc:
        if part.first == 0:
            raise  # not a video at all: the caller reports it as for one pass
        return _ended(part, exc.cause, "decoding failed")  # nothing decodes from here on (a truncated file)


def _ended(part: Stretch, cause: str, what: str) -> WindowFeatures:
    """A stretch with no window: the timeline ends where it begins, for `cause`."""
    start = part.plan.start(part.first)
    broken = StreamBrokenError(part.path, start, cause, what)
    return WindowFeatures(part.path, np.zeros(0), np.zeros(0), {}, [], start, broken=broken)


def _joined(parts: list[WindowFeatures]) -> WindowFeatures:
    """The stretches' windows in order, up to the first break (its stretch's windows before it included)."""
    kept: list[WindowFeatures] = []
    for part in parts:
        kept.append(part)
        if part.broken is not None:
            break
    names = next((list(p.values) for p in kept if p.values), [])
    return WindowFeatures(
        parts[0].path,
        np.concatenate([p.starts for p in kept]),
        np.concatenate([p.ends for p in kept]),
        {n: np.concatenate([p.values[n] for p in kept if n in p.values]).astype(np.float32) for n in names},
        [f for p in kept for f in p.facts],
        max(p.duration for p in kept),
        broken=kept[-1].broken,
    )


__all__ = ["MIN_WINDOWS_PER_STRETCH", "Stretch", "stretches", "window_features"]

"""Fitting a tier (the low tier's HOG PCA) on a sample of a run's own inputs.

On the extraction's own pass, when the tier can be (`Tier.fits_on_pass`) and the sample's
deferred work fits in memory: the sampled videos are extracted first, decoded once at the run's
settings and given to every tier, the fitted tier leaving its fitted step out (`Tier.defer`)
and handing over the rows it learns from. The fit takes those rows in input order as they
arrive; then each sampled video is completed. A run thus decodes every video once, and the
fit equals one on the same clips decoded apart (bit for bit).

Otherwise (frames that follow each video's frame rate, a sample too large to hold, fewer frames
a video than the fit needs) the sample is decoded at `fit_frames` frames a video for the fit
alone, and its videos are decoded again by the extraction (a 200-video sample of a
10,000-video run: 2% more decoding).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tiermem.errors import TiermemError
from tiermem.extraction.report import ExtractReport
from tiermem.extraction.workers import Extractor, Job, _Outcome, fit_clips
from tiermem.run import Run
from tiermem.store import FeatureStore
from tiermem.store_memory import MemoryStore
from tiermem.tiers import Tier

if TYPE_CHECKING:
    from tiermem.extraction.pool import WorkerPool
    from tiermem.extraction.ray_pool import RayPool

#: Frames a fit sees at least: few videos are decoded at more frames each (HOG PCA: 10 axes).
FIT_MIN_FRAMES = 40


def fit_sample(paths: list[str], limit: int) -> list[str]:
    """At most `limit` paths spread evenly over the (sorted) inputs: deterministic, so reruns agree."""
    if len(paths) <= limit:
        return paths
    idx = np.unique(np.linspace(0, len(paths) - 1, limit).round().astype(int))
    return [paths[i] for i in idx]


def fit_frames_per_clip(videos: int, frames: int) -> int:
    """Frames of each sampled video a fit reads: `frames`, more for a sample of few videos, so
    that the fit sees at least `FIT_MIN_FRAMES` frames (one video is enough)."""
    return max(frames, -(-FIT_MIN_FRAMES // max(videos, 1)))


def fits_on_pass(
    tier: Tier, videos: int, per_clip: int, run_frames: int | None, size: int, room: int
) -> bool:
    """Whether `tier` is fitted on the extraction's own pass over its `videos` sampled videos:
    it can be, the run decodes a known number of frames of at least `per_clip`, and the deferred
    work of the whole sample fits in `room` bytes."""
    if not tier.fits_on_pass or run_frames is None or run_frames < per_clip:
        return False
    return videos * tier.deferred_bytes(run_frames, size) <= room


def fit_on_pass(
    fitting: Mapping[str, Tier],
    jobs: list[Job],
    outcomes: Iterator[list[_Outcome]],
    arrived_one: Callable[[_Outcome], object],
) -> tuple[list[_Outcome], list[str]]:
    """Fit the tiers of `fitting` on the sampled videos' `jobs` (in input order, each deferring
    those tiers) as their `outcomes` arrive, then complete the deferred work.

    `arrived_one` takes each outcome as it arrives (its other tiers' rows can be written at
    once). Returns the jobs' outcomes in input order, holding the fitted tiers' values, and the
    names of the tiers that were fitted (a tier that no sampled video reached is not).
    """
    position = {job.path: k for k, job in enumerate(jobs)}
    fits = {name: tier.start_fit() for name, tier in fitting.items()}
    rows = dict.fromkeys(fitting, 0)
    arrived: dict[int, _Outcome] = {}
    following = 0
    for batch in outcomes:
        for outcome in batch:
            arrived[position[outcome.job.path]] = outcome
            arrived_one(outcome)
        while following in arrived:  # rows enter each fit in input order, whoever finished first
            for name, deferred in arrived[following].deferred.items():
                fits[name].add(deferred.fit_rows)
                deferred.fit_rows = None  # the fit has them
                rows[name] += 1
            following += 1
    ordered = [arrived[k] for k in range(len(jobs))]
    fitted = [name for name in fitting if rows[name]]
    for name in fitted:
        try:
            fits[name].finish()
        except TiermemError as exc:
            raise _while_fitting(exc, name, len(jobs)) from None
    for outcome in ordered:
        for name, deferred in outcome.deferred.items():
            try:
                outcome.values[name], outcome.facts[name] = fitting[name].complete(deferred)
            except TiermemError as exc:
                outcome.errors.append(f"tier {name}: {exc}")
        outcome.deferred.clear()
    return ordered, fitted


def fit_tier(
    name: str,
    tier: Tier,
    sample: list[str],
    per_clip: int,
    fit_frames: int,
    local: Extractor,
    pool: WorkerPool | RayPool | None,
    report: ExtractReport,
    run: Run,
    everything: bool,
) -> bool:
    """Fit `tier` on its own decoding of the sampled videos, `per_clip` frames each; False when
    no sampled video decodes and the sample is every input (`everything`: each is then in
    `report.failed` with its reason), an error when it is not."""
    stage = f"fitting {name} on {len(sample)} videos"
    seen = itertools.count(1)
    run.progress(stage, 0, len(sample))
    undecodable: list[tuple[str, str]] = []
    tick = lambda: run.progress(stage, next(seen), len(sample))  # noqa: E731
    clips = fit_clips(sample, per_clip, local, pool if len(sample) > 1 else None, tick, undecodable)
    first = next(clips, None)
    if first is None:
        if everything:
            report.failed.extend(undecodable)
            return False
        raise no_fitting_video(name, undecodable)
    try:
        # The fit takes `per_clip` evenly spaced frames of each clip.
        tier.fit(itertools.chain([first], clips), frames_per_clip=per_clip if per_clip > fit_frames else None)
    except TiermemError as exc:
        raise _while_fitting(exc, name, len(sample)) from None
    return True


def _while_fitting(exc: TiermemError, name: str, videos: int) -> TiermemError:
    return TiermemError(
        f"{exc} (while fitting tier {name} on {videos} input videos; for a few videos, "
        "pass a state fitted on a larger corpus with --state)"
    )


def no_fitting_video(name: str, failed: list[tuple[str, str]]) -> TiermemError:
    """The error of a fit none of whose sampled videos could be used, with the first reasons."""
    shown = "; ".join(f"{p}: {r}" for p, r in failed[:3])
    return TiermemError(
        f"cannot fit tier {name}: none of the {len(failed)} sampled videos could be decoded ({shown}"
        f"{'; ...' if len(failed) > 3 else ''})"
    )


def save_fitted(
    name: str, tier: Tier, store: FeatureStore | MemoryStore, report: ExtractReport, config: dict[str, Any]
) -> None:
    """Save a tier's new state in the store (with how it was fitted) and note it in the report."""
    store.save_state(name, tier.state_dict(), config=config)
    report.fitted.append(name)


__all__ = [
    "FIT_MIN_FRAMES",
    "fit_frames_per_clip",
    "fit_on_pass",
    "fit_sample",
    "fit_tier",
    "fits_on_pass",
    "no_fitting_video",
    "save_fitted",
]

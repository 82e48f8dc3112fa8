"""Fitting a tier (the low tier's HOG PCA) on a sample of a run's own inputs.

The sample is decoded at the run's own settings when its frames fit in the run's frame
memory, and those clips are kept: the extraction pass then takes them as they are, so a small
run decodes every video once. A larger sample is decoded at `FitSource.frames` frames a video
for the fit alone, and its videos are decoded again by the extraction (a 200-video sample of a
10,000-video run: 2% more decoding).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tiermem.errors import TiermemError
from tiermem.extraction.report import ExtractReport
from tiermem.extraction.workers import Extractor, fit_clips
from tiermem.run import Run
from tiermem.store import FeatureStore
from tiermem.tiers import Tier
from tiermem.video import Clip

if TYPE_CHECKING:
    from tiermem.extraction.pool import WorkerPool
    from tiermem.extraction.ray_pool import RayPool

#: Frames a fit sees at least: few videos are decoded at more frames each (HOG PCA: 10 axes).
FIT_MIN_FRAMES = 40


@dataclass
class FitSource:
    """Where a fit's clips come from, and the clips it decoded at the run's settings.

    `frames`: frames a video when the sample is decoded for the fit alone. `run_frames`: frames
    a video at the run's settings (None when they follow the frame rate, so their number is
    not known before decoding). `room`: videos at the run's settings that fit in the frame
    memory at once. `held`: clips kept for the extraction, by path.
    """

    local: Extractor
    pool: WorkerPool | RayPool | None
    max_videos: int
    frames: int
    run_frames: int | None
    room: int
    held: dict[str, Clip] = field(default_factory=dict)

    def keeps(self, sample: list[str], per_clip: int) -> bool:
        """Whether the sample is decoded at the run's settings and kept: it fits in memory and
        gives the fit at least the frames a fit-only decode would."""
        return self.run_frames is not None and self.run_frames >= per_clip and len(sample) <= self.room

    def clips(self, sample: list[str], per_clip: int, tick: Any, failed: list[tuple[str, str]]) -> Iterator[Clip]:
        """The sample's clips in input order (kept ones first from memory)."""
        if all(p in self.held for p in sample):
            for p in sample:
                tick()
                yield self.held[p]
            return
        keep = self.keeps(sample, per_clip)
        pool = self.pool if len(sample) > 1 else None
        for clip in fit_clips(sample, None if keep else per_clip, self.local, pool, tick, failed):
            if keep:
                self.held[clip.meta.path] = clip
            yield clip


def fit_tier(
    name: str,
    tier: Tier,
    inputs: list[str],
    source: FitSource,
    decode_settings: dict[str, Any],
    store: FeatureStore,
    report: ExtractReport,
    run: Run,
) -> bool:
    """Fit `tier` on a sample of `inputs` and save its state; False when no input decodes at all.

    A sample of few videos gets more frames per video, so that the fit sees at least
    `FIT_MIN_FRAMES` frames (one video is enough); larger samples keep `source.frames` per video.
    """
    sample = fit_sample(inputs, source.max_videos)
    if not sample:
        return False
    per_clip = max(source.frames, -(-FIT_MIN_FRAMES // len(sample)))
    stage = f"fitting {name} on {len(sample)} videos"
    seen = itertools.count(1)
    run.progress(stage, 0, len(sample))
    undecodable: list[tuple[str, str]] = []
    clips = source.clips(sample, per_clip, lambda: run.progress(stage, next(seen), len(sample)), undecodable)
    first = next(clips, None)
    if first is None:
        if len(sample) == len(inputs):
            report.failed.extend(undecodable)
            return False
        shown = "; ".join(f"{p}: {r}" for p, r in undecodable[:3])
        raise TiermemError(
            f"cannot fit tier {name}: none of the {len(sample)} sampled videos could be decoded ({shown}"
            f"{'; ...' if len(undecodable) > 3 else ''})"
        )
    try:
        # The fit takes `per_clip` evenly spaced frames of each clip, whichever way it was decoded.
        tier.fit(itertools.chain([first], clips), frames_per_clip=per_clip if per_clip > source.frames else None)
    except TiermemError as exc:
        raise TiermemError(
            f"{exc} (while fitting tier {name} on {len(sample)} input videos; for a few videos, "
            "pass a state fitted on a larger corpus with --state)"
        ) from None
    config = {"tier": tier.config, "decode": decode_settings, "videos": len(sample), "frames": per_clip}
    store.save_state(name, tier.state_dict(), config=config)
    report.fitted.append(name)
    return True


def fit_sample(paths: list[str], limit: int) -> list[str]:
    """At most `limit` paths spread evenly over the (sorted) inputs: deterministic, so reruns agree."""
    if len(paths) <= limit:
        return paths
    idx = np.unique(np.linspace(0, len(paths) - 1, limit).round().astype(int))
    return [paths[i] for i in idx]


__all__ = ["FIT_MIN_FRAMES", "FitSource", "fit_sample", "fit_tier"]

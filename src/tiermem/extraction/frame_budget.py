"""The run's budget for decoded frames: how many videos a worker's task holds, and how many
clips a device stage batches and queues, so that the frames held at once stay within it."""

from __future__ import annotations

from tiermem.errors import TiermemError

#: Bytes of decoded frames a run may hold at once, over all its workers (see `extract_videos`).
FRAME_MEMORY = 1 << 30


def videos_per_task(
    videos: int,
    workers: int,
    batch_size: int,
    frames: int | None,
    size: int,
    frame_memory: int,
    held: int = 1,
) -> int:
    """Videos per task: `batch_size`, fewer when the decoded frames of all workers would pass `frame_memory`.

    Each task holds its videos' frames (``frames x size x size x 3`` bytes each) while the
    tiers run, and each worker runs one task at a time; `held`: tasks' frames held per worker
    (2 with a device stage here: a finished task's clips wait for the stage while the worker
    decodes the next). Unknown with an ``fps`` (frames follow each video's duration): then
    nothing is checked.
    """
    if frames is None:
        return batch_size
    per_video = frames * size * size * 3
    fits = frame_memory // (per_video * workers * held)
    if fits < 1:
        staged = " (twice each, with the device stage)" if held > 1 else ""
        raise TiermemError(
            f"--frames {frames} at --size {size} decodes {per_video / 2**20:.0f} MiB of frames per video; "
            f"{workers} worker(s) at once{staged} need {per_video * workers * held / 2**30:.2f} GiB, over the "
            f"{frame_memory / 2**30:.2f} GiB allowed for decoded frames: lower --frames, --size or --workers"
        )
    return max(1, min(batch_size, videos, fits))


def stage_limits(device_batch: int, frames: int | None, size: int, frame_memory: int) -> tuple[int, int]:
    """(clips per batch, clips waiting) of a device stage here: `device_batch` and two batches,
    fewer when their decoded frames would pass half of `frame_memory` (the workers' tasks hold
    the other half, `videos_per_task`). Unknown with an ``fps``: then as asked."""
    if frames is None:
        return device_batch, 2 * device_batch
    fits = max(2, (frame_memory // 2) // (frames * size * size * 3))
    batch = max(1, min(device_batch, fits // 2))
    return batch, max(1, min(2 * device_batch, fits - batch))


__all__ = ["FRAME_MEMORY", "stage_limits", "videos_per_task"]

"""One streaming pass over a whole video: read from start to end once, never held whole.

`VideoStream.frames()` demuxes and decodes in the same loop and yields every decoded frame with
its presentation time (seconds from the first frame), so a caller keeps only the frames it
needs and converts only those (`to_square`). Times come from timestamps, not frame counts: a
variable-frame-rate video, or one whose timestamps jump, is placed where it is shown. Packet
sizes are recorded as they pass, so the bytes per second of any stretch (the low tier's
``size_orig`` of a window) need no second read, and are forgotten once no longer asked for.

A stream that breaks (a decoding error, or fewer frames than the container lists) raises
`StreamBrokenError` carrying the time decoding reached; frames yielded before it stay valid.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tiermem.errors import VideoDecodeError
from tiermem.video.clip import VideoMeta
from tiermem.video.decode import _ffmpeg_reason, _frame_rate, _open, _video_stream, to_square


class StreamBrokenError(VideoDecodeError):
    """Decoding stopped partway: `at` is the time (seconds) of the last frame decoded. `what`
    says what stopped there (the decoder, or the worker scanning that stretch of the video)."""

    def __init__(self, path: object, at: float, cause: str, what: str = "decoding failed") -> None:
        self.at = at
        self.reason = cause
        self.what = what
        super().__init__(path, f"{what} at {at:.2f} s: {cause}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.path, self.at, self.reason, self.what)


class VideoStream:
    """A video opened for one pass; `frames()` may be iterated once.

    `start` (seconds): begin at the keyframe at or before it instead of the first frame (one
    stretch of a long video); times stay measured from the video's first frame.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int = 0, start: float = 0.0) -> None:
        self.path = Path(path)
        self._container = _open(self.path)
        try:
            stream = _video_stream(self.path, self._container, threads)
        except VideoDecodeError:
            self._container.close()
            raise
        self._stream = stream
        self.fps = _frame_rate(stream) or 25.0
        self._tb = float(stream.time_base or Fraction(1, 1))
        # Read now: `frames()` checks it after closing the file, and PyAV 19 refuses a closed
        # container's stream.
        self._declared = int(stream.frames or 0)
        ctx = stream.codec_context
        self._picture = (int(ctx.width), int(ctx.height), str(ctx.name))
        self._has_audio = bool(self._container.streams.audio)
        self._packets: deque[tuple[int, int]] = deque()  # (pts, bytes) of packets not yet forgotten
        self._origin: int | None = None  # pts of the first frame shown
        self.frames_decoded = 0
        self.last_time = 0.0
        self._skipped = 0  # frames before the keyframe a stretch starts at (not decoded)
        if start > 0:
            self._seek(start)

    def _seek(self, start: float) -> None:
        """Learn the first frame's timestamp (times count from it), then go to the keyframe at or
        before `start`; the decoder starts afresh there."""
        try:
            for frame in self._container.decode(self._stream):
                if frame.pts is not None:
                    self._origin = frame.pts
                    break
            if self._origin is None:
                return  # no timestamps: frames are placed by count, read from the start
            self._container.seek(
                int(self._origin + start / self._tb), stream=self._stream, backward=True, any_frame=False
            )
        except av.FFmpegError as exc:
            self._container.close()
            raise StreamBrokenError(self.path, 0.0, _ffmpeg_reason(exc)) from None

    @property
    def duration(self) -> float:
        """The decoded part's duration: the last frame's time plus one frame."""
        return self.last_time + 1.0 / self.fps if self.frames_decoded else 0.0

    def frames(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """(time in seconds, frame) in presentation order; closes the file when done."""
        path, stream = self.path, self._stream
        last_pts: int | None = None
        try:
            for packet in self._container.demux(stream):
                if packet.size:
                    pts = (
                        packet.pts
                        if packet.pts is not None
                        else (self._packets[-1][0] if self._packets else 0)
                    )
                    self._packets.append((pts, packet.size))
                for frame in packet.decode():
                    if frame.pts is None:  # raw streams without timestamps: place frames by count
                        frame_time = self.frames_decoded / self.fps
                    else:
                        if self._origin is None:
                            self._origin = frame.pts
                        if last_pts is not None and frame.pts <= last_pts:
                            continue  # a timestamp going back would put the frame in the past
                        last_pts = frame.pts
                        frame_time = (frame.pts - self._origin) * self._tb
                    if self.frames_decoded and frame_time <= self.last_time:
                        continue
                    if not self.frames_decoded:
                        self._skipped = round(frame_time * self.fps)
                    self.frames_decoded += 1
                    self.last_time = frame_time
                    yield frame_time, frame
        except av.FFmpegError as exc:
            raise StreamBrokenError(path, self.last_time, _ffmpeg_reason(exc)) from None
        finally:
            self._container.close()
        if not self.frames_decoded:
            raise VideoDecodeError(path, "zero decodable video frames")
        declared = self._declared - self._skipped if self._declared else 0
        if declared and self.frames_decoded < declared - max(2, declared // 100):
            raise StreamBrokenError(
                path,
                self.last_time,
                f"the container lists {declared} frames, only {self.frames_decoded} decode",
            )

    def packets_between(self, start: float, end: float) -> tuple[int, int]:
        """(packets, bytes) of the video packets shown in [start, end) seconds, among those seen."""
        lo, hi = self._pts(start), self._pts(end)
        sizes = [size for pts, size in self._packets if lo <= pts < hi]
        return len(sizes), sum(sizes)

    def _pts(self, seconds: float) -> float:
        """The pts half a frame before `seconds`: frames shown from `seconds` on have a pts above it."""
        return (self._origin or 0) + (seconds - 0.5 / self.fps) / self._tb

    def forget_before(self, start: float) -> None:
        """Drop the packets shown before `start`: no stretch asked for later begins earlier."""
        cut = self._pts(start)
        while self._packets and self._packets[0][0] < cut:
            self._packets.popleft()

    def meta(self, duration: float, byte_count: int, frame_count: int) -> VideoMeta:
        """Metadata of a stretch of this video: its length, frames and bytes."""
        width, height, codec = self._picture  # read at open: the file may be closed by now
        rate = byte_count / duration if duration > 0 else 0.0
        return VideoMeta(
            path=str(self.path),
            duration=duration,
            fps=self.fps,
            width=width,
            height=height,
            frame_count=frame_count,
            codec=codec,
            bitrate=int(round(8 * rate)),
            file_size=self.path.stat().st_size,
            has_audio=self._has_audio,
            video_bytes_per_second=rate,
        )

    def close(self) -> None:
        self._container.close()


def median_duration(paths: list[Path], limit: int = 200) -> float | None:
    """Median declared duration (seconds) of up to `limit` evenly spread videos of `paths`."""
    picked = (
        [
            paths[i]
            for i in np.unique(np.linspace(0, len(paths) - 1, min(limit, len(paths))).round().astype(int))
        ]
        if paths
        else []
    )
    durations = [d for p in picked if (d := declared_duration(p))]
    return round(float(np.median(durations)), 3) if durations else None


def declared_duration(path: Path) -> float | None:
    """The duration the container declares, read from its header (None when it cannot be opened:
    the clip path then reports why)."""
    try:
        container = _open(path)
    except VideoDecodeError:
        return None
    try:
        stream = container.streams.video[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        return container.duration / av.time_base if container.duration else 0.0
    finally:
        container.close()


def frame_at(path: str | os.PathLike[str], seconds: float, size: int = 160) -> np.ndarray:
    """The RGB frame on screen at `seconds` from the first frame, `size` pixels wide (height
    scaled to keep the stored aspect ratio): seeks to the keyframe before it and decodes forward.

    The frame on screen at a time is the last one whose presentation time is at or before it,
    as `VideoStream` and the clip sampler place frames; the last frame stays on screen for one
    frame period. Raises `VideoDecodeError` naming the file when it cannot be read there.
    """
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be a finite time >= 0, got {seconds}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    path = Path(path)
    shown = _shown_at(path, seconds, seek=True)
    if shown is None:  # a seek that overshot, or frames without timestamps: read from the start
        shown = _shown_at(path, seconds, seek=False)
    if shown is None:
        raise VideoDecodeError(path, f"no frame on screen at {seconds:g} s")
    frame, fps, last = shown
    if seconds > last + 1.0 / fps + 1e-6:
        raise VideoDecodeError(path, f"no frame at {seconds:g} s: the video ends at {last + 1.0 / fps:.2f} s")
    height = max(1, int(round(frame.height * size / frame.width)))
    return np.ascontiguousarray(
        frame.to_ndarray(width=int(size), height=height, format="rgb24", interpolation="BILINEAR")
    )


def _shown_at(path: Path, seconds: float, seek: bool) -> tuple[av.VideoFrame, float, float] | None:
    """(frame on screen at `seconds`, frames per second, time of the last frame decoded).

    With `seek`, None when the answer cannot be trusted: no start time to seek from, frames
    without timestamps, or a seek that landed after `seconds`. Without it, decoding runs from
    the first frame (frames without timestamps are placed by count).
    """
    container = _open(path)
    try:
        stream = _video_stream(path, container)
        fps = _frame_rate(stream) or 25.0
        tb = float(stream.time_base or Fraction(1, 1))
        origin = stream.start_time
        if seek:
            if origin is None:
                return None
            try:
                container.seek(int(origin + seconds / tb), stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                return None
        previous: av.VideoFrame | None = None
        last, count = -1.0, 0
        for frame in container.decode(stream):
            if frame.pts is None:
                if seek:
                    return None
                time = count / fps
            else:
                if origin is None:
                    origin = frame.pts
                time = (frame.pts - origin) * tb
            count += 1
            if time <= last:
                continue  # a timestamp going back would put the frame in the past
            if time > seconds + 1e-9 and (previous is not None or seek):
                # the frame before is on screen; after a seek, none before means it overshot
                return (previous, fps, last) if previous is not None else None
            previous, last = frame, time
        return (previous, fps, last) if previous is not None else None
    except av.FFmpegError as exc:
        raise VideoDecodeError(path, f"decoding failed near {seconds:g} s ({_ffmpeg_reason(exc)})") from None
    finally:
        container.close()


__all__ = [
    "StreamBrokenError",
    "VideoStream",
    "declared_duration",
    "frame_at",
    "median_duration",
    "to_square",
]

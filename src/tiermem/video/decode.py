"""Open a video once with PyAV, sample frames, resize them to a square: the only place tiermem decodes.

Two passes over the file, only the second one decoding:

1. *demux* (cheap, no decoding): every video packet's timestamp, size and keyframe flag. This
   gives the exact frame count, the frame times, and the size of the video stream alone
   (``video_bytes_per_second``, the paper's ``size_orig``) without an ffmpeg subprocess.
2. *decode*: the frame timestamps to keep are chosen up front, the decoder (threaded) runs
   only up to the last of them, seeks over long gaps between them (to the keyframe before
   the next wanted frame), and only kept frames are converted: libswscale resizes and
   converts to RGB in one call.

Sampling: ``frames`` timestamps at the centres of equal segments of the clip, each mapped to
the frame on screen at that moment (the last frame starting at or before it). A 90-frame clip
sampled to 45 keeps frames 1, 3, 5, ...; a 45-frame clip keeps every frame. A clip
with fewer frames than requested (down to one frame) still returns exactly ``frames`` frames:
frames repeat, and ``times`` shows the repeats. Tiers therefore always see the same T; a
repeated frame reads as "no motion", which is what a viewer of a still would see.

Orientation: the stored frame is returned as stored (a display-rotation tag is not
applied); portrait storage gives H > W before resizing. Alpha is dropped (the stored colour
is kept), grayscale becomes R = G = B.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from tiermem.errors import VideoDecodeError
from tiermem.inputs import unreadable_reason
from tiermem.video.clip import Clip, VideoMeta

ResizeMode = Literal["stretch", "crop"]

#: Seek instead of decoding through a gap when at least this many frames would be skipped.
SEEK_MIN_SKIPPED_FRAMES = 48
#: libswscale filter for the resize. swscale widens its bilinear filter by the shrink factor
#: (a triangle filter over all covered source pixels), so 720p/4K -> 256 does not alias, and
#: it costs ~10 ms per 45 frames of 720p where AREA cost ~90 ms here.
INTERPOLATION = "BILINEAR"


@dataclass(frozen=True)
class _Index:
    """What one demux pass learns about the video stream (no decoding)."""

    pts: np.ndarray | None  # sorted presentation timestamps (stream time base); None if missing
    keyframes: np.ndarray  # sorted pts of keyframe packets (empty when pts are missing)
    n_packets: int
    n_bytes: int


def _fail(path: Path, cause: str) -> VideoDecodeError:
    return VideoDecodeError(path, cause)


def _open(path: Path) -> av.container.InputContainer:
    # Name what is wrong with the path itself (a link loop, a folder, a file that may not be
    # read, a FIFO that would block) before FFmpeg reports it as "not a video".
    reason = unreadable_reason(path)
    if reason is not None:
        raise _fail(path, reason)
    if path.stat().st_size == 0:
        raise _fail(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise _fail(path, f"not a video, or a truncated/corrupt container ({_ffmpeg_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise _fail(path, "no video stream in the container")
    return container


def _video_stream(
    path: Path, container: av.container.InputContainer, threads: int = 0
) -> av.video.stream.VideoStream:
    """The first video stream, set to decode with frame threads (`threads` 0: FFmpeg's choice);
    refuses a codec FFmpeg cannot decode."""
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise _fail(path, f"unsupported codec {stream.codec_tag or 'unknown'}")
    stream.thread_type = "AUTO"
    stream.thread_count = threads
    return stream


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's own message without the path PyAV appends (the error already names the file)."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc).strip().rstrip(".")


def _demux_index(path: Path, container: av.container.InputContainer) -> _Index:
    stream = container.streams.video[0]
    pts: list[int] = []
    keys: list[int] = []
    n_packets = n_bytes = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # flush packet at end of stream
                continue
            n_packets += 1
            n_bytes += packet.size
            if packet.pts is not None:
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
    except av.FFmpegError as exc:
        raise _fail(
            path, f"corrupt or truncated video stream after {n_packets} frames ({_ffmpeg_reason(exc)})"
        ) from None
    if not n_packets:
        raise _fail(path, "zero video frames in the container")
    declared = stream.frames  # from the container's index (mp4 sample table, ...); 0 if unknown
    if declared and n_packets < declared - max(2, declared // 100):
        raise _fail(
            path,
            f"truncated: the container lists {declared} video frames but only {n_packets} are in the file",
        )
    unique_pts = np.unique(np.asarray(pts, dtype=np.int64))
    if len(unique_pts) < n_packets:
        # Timestamps missing or repeated (raw streams, some AVI, broken muxers): place frames by count.
        return _Index(pts=None, keyframes=np.empty(0, np.int64), n_packets=n_packets, n_bytes=n_bytes)
    return _Index(
        pts=unique_pts,
        keyframes=np.unique(np.asarray(keys, dtype=np.int64)),
        n_packets=n_packets,
        n_bytes=n_bytes,
    )


def _frame_rate(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _meta(path: Path, container: av.container.InputContainer, index: _Index) -> VideoMeta:
    stream = container.streams.video[0]
    ctx = stream.codec_context
    tb = stream.time_base or Fraction(1, 1)
    fps = _frame_rate(stream)
    span = float((index.pts[-1] - index.pts[0]) * tb) if index.pts is not None else 0.0
    if not fps and span > 0 and index.pts is not None:
        fps = (len(index.pts) - 1) / span
    if span > 0 or (index.pts is not None and fps):
        # The video stream alone: first frame's start to last frame's end (audio may run longer).
        duration = span + (1.0 / fps if fps else 0.0)
    elif stream.duration:
        duration = float(stream.duration * tb)
    elif container.duration:
        duration = container.duration / av.time_base
    else:
        duration = index.n_packets / fps if fps else 0.0
    if not fps and duration > 0:
        fps = index.n_packets / duration
    bytes_per_second = index.n_bytes / duration if duration > 0 else 0.0
    bitrate = int(stream.bit_rate or ctx.bit_rate or round(8 * bytes_per_second))
    return VideoMeta(
        path=str(path),
        duration=duration,
        fps=fps,
        width=int(ctx.width),
        height=int(ctx.height),
        frame_count=index.n_packets,
        codec=ctx.name,
        bitrate=bitrate,
        file_size=path.stat().st_size,
        has_audio=bool(container.streams.audio),
        video_bytes_per_second=bytes_per_second,
    )


def probe(path: str | os.PathLike[str]) -> VideoMeta:
    """Metadata of a video (no decoding; one demux pass for exact frame count and stream size)."""
    path = Path(path)
    container = _open(path)
    try:
        return _meta(path, container, _demux_index(path, container))
    finally:
        container.close()


def _target_times(duration: float, frames: int | None, fps: float | None) -> np.ndarray:
    """Seconds from the first frame at which to sample."""
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        n = max(1, int(np.floor(duration * fps + 1e-9)))
        return (np.arange(n) + 0.5) / fps
    if frames is None or frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    return (np.arange(frames) + 0.5) * (duration / frames)


def to_square(frame: av.VideoFrame, size: int, mode: ResizeMode) -> np.ndarray:
    if mode == "stretch":
        return frame.to_ndarray(width=size, height=size, format="rgb24", interpolation=INTERPOLATION)
    # Centre crop: scale the short side to `size` (aspect kept), then cut the centre square.
    # Scaling first then cropping equals cropping then scaling, but touches fewer pixels.
    w, h = frame.width, frame.height
    if w >= h:
        sw, sh = max(size, round(w * size / h)), size
    else:
        sw, sh = size, max(size, round(h * size / w))
    arr = frame.to_ndarray(width=sw, height=sh, format="rgb24", interpolation=INTERPOLATION)
    y0, x0 = (sh - size) // 2, (sw - size) // 2
    return arr[y0 : y0 + size, x0 : x0 + size]


def decode(
    path: str | os.PathLike[str],
    frames: int = 45,
    size: int = 256,
    mode: ResizeMode = "stretch",
    fps: float | None = None,
    threads: int = 0,
) -> Clip:
    """Decode `frames` frames sampled uniformly over the video, or, when `fps` is given, one
    frame every 1/`fps` seconds over the whole video (`frames` is then ignored).

    Returns a `Clip`: uint8 RGB frames (T, size, size, 3), their times in seconds from the first
    frame, and the video's `VideoMeta`. `mode="stretch"` squashes the whole frame to a square
    (as the paper does); `"crop"` keeps the aspect ratio and takes the centre square.
    `threads` is FFmpeg's decoder thread count (0: FFmpeg chooses; 1 inside worker processes).
    Raises `VideoDecodeError` naming the file and the cause for anything that is not a
    decodable video.
    """
    if mode not in ("stretch", "crop"):
        raise ValueError(f"mode must be 'stretch' or 'crop', got {mode!r}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    path = Path(path)
    container = _open(path)
    kept: _Kept | None = None
    try:
        index = _demux_index(path, container)
        meta = _meta(path, container, index)
        targets = _target_times(meta.duration, frames, fps)
        if index.pts is not None and len(index.keyframes):
            # One open for both passes: the container is rewound to its first keyframe. Should a
            # format not rewind (a chosen frame never comes back), the pass is redone below on a
            # fresh container, as for streams without timestamps.
            stream = _video_stream(path, container, threads)
            tb = float(stream.time_base)  # read while open: PyAV 19 refuses a closed container's stream
            container.seek(int(index.keyframes[0]), stream=stream, backward=True, any_frame=False)
            kept = _decode_by_pts(path, container, stream, index, meta.fps, targets, size, mode)
            if not kept.complete:
                kept = None
    except av.FFmpegError as exc:
        raise _fail(path, f"decoding failed ({_ffmpeg_reason(exc)})") from None
    finally:
        container.close()
    if kept is not None:
        out, times = kept.finish(path, index.pts[0], tb)  # type: ignore[index]
        return Clip(frames=out, times=times, meta=meta)
    container = _open(path)
    try:
        stream = _video_stream(path, container, threads)
        if index.pts is not None:
            kept = _decode_by_pts(path, container, stream, index, meta.fps, targets, size, mode)
            out, times = kept.finish(path, index.pts[0], float(stream.time_base))
        else:
            out, times = _decode_by_count(path, container, stream, index, meta, targets, size, mode)
    except av.FFmpegError as exc:
        raise _fail(path, f"decoding failed ({_ffmpeg_reason(exc)})") from None
    finally:
        container.close()
    return Clip(frames=out, times=times, meta=meta)


def _decode_by_pts(
    path: Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    index: _Index,
    fps: float,
    targets: np.ndarray,
    size: int,
    mode: ResizeMode,
) -> "_Kept":
    """Normal path: choose the frame on screen at each target time, decode up to the last one;
    the frames kept (`_Kept.finish` puts them in target order)."""
    assert index.pts is not None
    tb = float(stream.time_base)
    frame_times = (index.pts - index.pts[0]) * tb
    chosen = index.pts[_on_screen(frame_times, targets, fps)]
    kept = _Kept(chosen, size)
    step = int(np.median(np.diff(index.pts))) if len(index.pts) > 1 else 1
    position = int(index.pts[0]) - step  # pts of the last frame the decoder returned
    frames_iter = container.decode(stream)
    for target in sorted(set(chosen.tolist())):
        if target in kept.filled:
            continue
        # Seek when a keyframe lies far enough past the decoder's position: decoding the gap
        # costs more than restarting at that keyframe.
        i = int(np.searchsorted(index.keyframes, target, side="right")) - 1
        if i >= 0 and index.keyframes[i] - position >= SEEK_MIN_SKIPPED_FRAMES * step:
            container.seek(int(index.keyframes[i]), stream=stream, backward=True, any_frame=False)
            frames_iter = container.decode(stream)
        for frame in frames_iter:
            if frame.pts is None:
                continue
            position = frame.pts
            if kept.wants(frame.pts):
                kept.put(frame.pts, to_square(frame, size, mode))
            if frame.pts >= target:
                break
        else:
            break  # the stream ended early (damaged tail): keep what was decoded
    return kept


def _on_screen(starts: np.ndarray, queries: np.ndarray, fps: float) -> np.ndarray:
    """Index of the frame on screen at each query time: the last start <= query.

    A query that lands on a frame's start (up to float rounding, a thousandth of a frame) gets
    that frame, so sampling 45 of 90 frames is exactly every second frame.
    """
    tolerance = 1e-3 / fps if fps > 0 else 1e-6
    return np.clip(np.searchsorted(starts, queries + tolerance, side="right") - 1, 0, len(starts) - 1)


class _Kept:
    """The output frames, filled while decoding: each wanted frame is converted once and written
    straight to its place(s), so a clip costs its own size in memory, not twice that."""

    def __init__(self, chosen: np.ndarray, size: int) -> None:
        self.chosen = chosen
        self.frames = np.empty((len(chosen), size, size, 3), dtype=np.uint8)
        self.places: dict[int, list[int]] = {}
        for i, key in enumerate(chosen.tolist()):
            self.places.setdefault(key, []).append(i)
        self.filled: dict[int, int] = {}  # key -> the first place holding its frame

    def wants(self, key: int) -> bool:
        return key in self.places and key not in self.filled

    @property
    def complete(self) -> bool:
        """Whether every chosen frame was decoded."""
        return len(self.filled) == len(self.places)

    def put(self, key: int, image: np.ndarray) -> None:
        places = self.places[key]
        self.frames[places] = image
        self.filled[key] = places[0]

    def finish(self, path: Path, first_key: int, tb: float) -> tuple[np.ndarray, np.ndarray]:
        """Frames and their times in target order; a target whose frame never decoded takes the nearest decoded one."""
        if not self.filled:
            raise _fail(path, "zero decodable video frames")
        have = np.fromiter(sorted(self.filled), dtype=np.int64)
        times = np.empty(len(self.chosen), dtype=np.float64)
        for i, key in enumerate(self.chosen.tolist()):
            if key not in self.filled:
                key = int(have[int(np.argmin(np.abs(have - key)))])
                self.frames[i] = self.frames[self.filled[key]]
            times[i] = (key - first_key) * tb
        return self.frames, times


def _decode_by_count(
    path: Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    index: _Index,
    meta: VideoMeta,
    targets: np.ndarray,
    size: int,
    mode: ResizeMode,
) -> tuple[np.ndarray, np.ndarray]:
    """Fallback for streams without timestamps (raw elementary streams, some AVI): frame i is at i/fps."""
    fps = meta.fps or 25.0
    n = max(1, index.n_packets)
    chosen = _on_screen(np.arange(n) / fps, targets, fps)
    kept = _Kept(chosen, size)
    last = int(chosen.max())
    for i, frame in enumerate(container.decode(stream)):
        if kept.wants(i):
            kept.put(i, to_square(frame, size, mode))
        if i >= last:
            break
    return kept.finish(path, 0, 1.0 / fps)

"""The decoded clip every tier consumes: frames once, metadata beside them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class VideoMeta:
    """What the container says about a video, read without decoding every frame."""

    path: str
    duration: float  # seconds
    fps: float
    width: int  # original size, before any resize
    height: int
    frame_count: int  # as reported by the container, or counted when it reports none
    codec: str
    bitrate: int  # bits per second of the video stream (0 if unknown)
    file_size: int  # bytes
    has_audio: bool
    video_bytes_per_second: float = 0.0  # size of the video stream alone, from packet sizes

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Clip:
    """Sampled frames (T, H, W, 3) uint8 RGB, their timestamps in seconds, and the video's metadata."""

    frames: np.ndarray
    times: np.ndarray
    meta: VideoMeta
    content_hash: str = ""  # hash of the file's bytes, the feature store's cache key
    extra: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

"""Video input: `decode` opens a file once and returns a `Clip` every tier consumes.

Nothing else in tiermem opens a video.
"""

from tiermem.errors import VideoDecodeError
from tiermem.video.clip import Clip, VideoMeta
from tiermem.video.decode import decode, probe

__all__ = ["Clip", "VideoDecodeError", "VideoMeta", "decode", "probe"]

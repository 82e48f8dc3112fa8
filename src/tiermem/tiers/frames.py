"""Picking and preparing frames from an already decoded `Clip` for the network tiers.

Every tier receives the same decoded clip (45 frames at 256x256 by default); each network
takes its own evenly spaced subset and resizes it on the fly, batched in torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tiermem.errors import TiermemError
from tiermem.video.clip import Clip


def evenly_spaced(num_frames: int, k: int) -> np.ndarray:
    """Indices of `k` frames at the centres of `k` equal segments (k=1: the middle frame).

    When `k` exceeds `num_frames`, frames repeat in order, as a slowed-down clip would.
    """
    if num_frames < 1:
        raise TiermemError("clip has no frames")
    if k < 1:
        raise TiermemError(f"need at least one frame, got k={k}")
    return np.minimum(((np.arange(k) + 0.5) * num_frames / k).astype(np.int64), num_frames - 1)


def sample_frames(clips: Sequence[Clip], k: int) -> np.ndarray:
    """(len(clips), k, H, W, 3) uint8: the same evenly spaced positions in every clip."""
    out = []
    for clip in clips:
        frames = clip.frames
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise TiermemError(f"{clip.meta.path}: expected frames (T, H, W, 3), got {frames.shape}")
        out.append(frames[evenly_spaced(frames.shape[0], k)])
    shapes = {f.shape[1:] for f in out}
    if len(shapes) > 1:
        raise TiermemError(f"clips in one batch must share a frame size, got {sorted(shapes)}")
    return np.stack(out)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)
    return t.movedim(-1, -3)


def resize(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of (M, 3, H, W) images (no-op when already that size)."""
    hw = (size, size) if isinstance(size, int) else size
    if tuple(images.shape[-2:]) == tuple(hw):
        return images
    return F.interpolate(images, size=hw, mode="bilinear", antialias=True, align_corners=False)


def resize_centre_crop(images: torch.Tensor, short_side: int, crop: int) -> torch.Tensor:
    """Resize so the shorter side is `short_side` (aspect kept), then crop the centre `crop` square."""
    h, w = images.shape[-2:]
    scale = short_side / min(h, w)
    images = resize(images, (max(crop, round(h * scale)), max(crop, round(w * scale))))
    h, w = images.shape[-2:]
    top, left = (h - crop) // 2, (w - crop) // 2
    return images[..., top : top + crop, left : left + crop]


def normalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Per-channel (x - mean) / std on channel dim -3."""
    m = torch.tensor(mean, dtype=images.dtype, device=images.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images - m) / s

"""Per-frame colour and tone statistics of the low tier, over many frames at once.

OpenCV runs on the frames stacked into one tall image, so one call covers a whole batch; each
frame's statistics are its own (no sum crosses frames), so a frame's values do not depend on
the frames batched beside it.
"""

from __future__ import annotations

import cv2
import numpy as np


def grey_frames(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) uint8 luma, one OpenCV call over the stacked frames."""
    t, h, w, _ = frames.shape
    return cv2.cvtColor(frames.reshape(t * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(t, h, w)


def colour_features(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame brightness, saturation (HSV) and Hasler–Süsstrunk colourfulness."""
    t, h, w, _ = frames.shape
    hsv = cv2.cvtColor(frames.reshape(t * h, w, 3), cv2.COLOR_RGB2HSV_FULL).reshape(t, h, w, 3)
    sv = np.array([cv2.mean(f)[1:3] for f in hsv], dtype=np.float32) / 255.0  # (T, 2): S, V
    # Opponent channels rg = R - G and yb = (R + G) / 2 - B, kept exact as int16 (yb doubled).
    red, green, blue = frames[..., 0], frames[..., 1], frames[..., 2]
    rg = np.subtract(red, green, dtype=np.int16)
    yb2 = np.add(red, green, dtype=np.int16)
    yb2 -= blue
    yb2 -= blue
    rg_stats = np.array([cv2.meanStdDev(f) for f in rg], dtype=np.float32).reshape(t, 2)
    yb_stats = np.array([cv2.meanStdDev(f) for f in yb2], dtype=np.float32).reshape(t, 2) / 2
    return {
        "brightness": sv[:, 1],
        "saturation": sv[:, 0],
        "colourfulness": np.hypot(rg_stats[:, 1], yb_stats[:, 1])
        + 0.3 * np.hypot(rg_stats[:, 0], yb_stats[:, 0]),
    }


def contrast(grey: np.ndarray) -> np.ndarray:
    """Per-frame std of the grey frame, on a 0-1 scale."""
    return np.array([cv2.meanStdDev(f)[1][0, 0] for f in grey], dtype=np.float32) / 255.0


__all__ = ["colour_features", "contrast", "grey_frames"]

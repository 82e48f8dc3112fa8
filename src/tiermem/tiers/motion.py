"""Motion and scene cuts between consecutive sampled frames: DIS optical flow and colour-histogram
distance (the low tier's per-pair work)."""

from __future__ import annotations

import cv2
import numpy as np


def pair_flow(first: np.ndarray, second: np.ndarray, flow_size: int, preset: int) -> np.ndarray:
    """Mean DIS optical-flow magnitude of each (first[i], second[i]) grey-frame pair, in pixels of the
    input size."""
    m, h, w = first.shape
    dis = cv2.DISOpticalFlow_create(preset)
    # each axis back to input pixels
    sx, sy = np.float32(w / flow_size), np.float32(h / flow_size)
    out = np.empty(m, dtype=np.float32)
    for i in range(m):
        a = cv2.resize(first[i], (flow_size, flow_size), interpolation=cv2.INTER_AREA)
        b = cv2.resize(second[i], (flow_size, flow_size), interpolation=cv2.INTER_AREA)
        flow = dis.calc(a, b, None)
        # OpenCV's magnitude: 5 instead of 19 ms a 3-s clip for numpy's square, sum and root
        # over the (size, size, 2) field; equal to 1.6e-7 relative.
        out[i] = cv2.magnitude(flow[..., 0] * sx, flow[..., 1] * sy).mean()
    return out


def colour_histograms(frames: np.ndarray, bins: int = 16, step: int = 4) -> np.ndarray:
    """(T, 3, bins) RGB histograms (shares of pixels) of every `step`-th pixel each way (4096 of
    a 256x256 frame: plenty for 3 x `bins` bins, and 16x cheaper).

    `bins` must divide 256: bin b of a channel holds the values v with v * bins // 256 == b.
    Counted by OpenCV's calcHist, frame by frame and channel by channel (2.0 instead of 6.5
    ms for 45 frames with numpy's bincount; the same counts).
    """
    if 256 % bins:
        raise ValueError(f"colour histograms need a number of bins that divides 256, got {bins}")
    t = len(frames)
    px = np.ascontiguousarray(frames[:, ::step, ::step])
    counts = np.empty((t, 3, bins))
    for i in range(t):
        for c in range(3):
            counts[i, c] = cv2.calcHist([px[i]], [c], None, [bins], [0, 256]).ravel()
    return counts / (px.shape[1] * px.shape[2])


def histogram_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Total-variation distance (mean over channels) between the colour histograms of frame pairs."""
    return 0.5 * np.abs(colour_histograms(second) - colour_histograms(first)).sum(axis=2).mean(axis=1)


def cut_count(frames: np.ndarray, threshold: float) -> int:
    """Scene cuts among consecutive frames: histogram distance above `threshold`."""
    if len(frames) < 2:
        return 0
    return int((histogram_distance(frames[:-1], frames[1:]) > threshold).sum())


__all__ = ["colour_histograms", "cut_count", "histogram_distance", "pair_flow"]

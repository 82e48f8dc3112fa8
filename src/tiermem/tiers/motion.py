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
    scale = np.array([w / flow_size, h / flow_size], dtype=np.float32)  # each axis back to input pixels
    out = np.empty(m, dtype=np.float32)
    for i in range(m):
        a = cv2.resize(first[i], (flow_size, flow_size), interpolation=cv2.INTER_AREA)
        b = cv2.resize(second[i], (flow_size, flow_size), interpolation=cv2.INTER_AREA)
        flow = dis.calc(a, b, None) * scale
        out[i] = np.sqrt((flow**2).sum(axis=-1)).mean()
    return out


def colour_histograms(frames: np.ndarray, bins: int = 16, step: int = 4) -> np.ndarray:
    """(T, 3, bins) RGB histograms (shares of pixels) of every `step`-th pixel each way (4096 of
    a 256x256 frame: plenty for 3 x `bins` bins, and 16x cheaper)."""
    t = len(frames)
    px = frames[:, ::step, ::step].reshape(t, -1, 3)
    index = (px.astype(np.intp) * bins) // 256 + np.arange(3) * bins  # channel c -> bins c*B..
    index += (np.arange(t) * 3 * bins)[:, None, None]
    return np.bincount(index.ravel(), minlength=t * 3 * bins).reshape(t, 3, bins) / px.shape[1]


def histogram_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Total-variation distance (mean over channels) between the colour histograms of frame pairs."""
    return 0.5 * np.abs(colour_histograms(second) - colour_histograms(first)).sum(axis=2).mean(axis=1)


def cut_count(frames: np.ndarray, threshold: float) -> int:
    """Scene cuts among consecutive frames: histogram distance above `threshold`."""
    if len(frames) < 2:
        return 0
    return int((histogram_distance(frames[:-1], frames[1:]) > threshold).sum())


__all__ = ["colour_histograms", "cut_count", "histogram_distance", "pair_flow"]

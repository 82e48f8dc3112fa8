"""Scene composition for the mid tier: spectral-residual saliency and edge density, batched.

Spectral residual (Hou & Zhang, CVPR 2007): the log amplitude spectrum minus its local mean
keeps what is unexpected in an image; back in the image domain with the original phase, its
squared magnitude is a saliency map. Computed in numpy for all frames at once at 64x64, the
scale the method was designed for (OpenCV's saliency module is not in the opencv wheels).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter, uniform_filter

FEATURE_NAMES = [
    "saliency_top10_share",
    "saliency_entropy",
    "saliency_centre_mass",
    "saliency_centroid_offset",
    "edge_density",
]

_SIDE = 64  # working resolution of the saliency map


def grey(frames: np.ndarray) -> np.ndarray:
    """(M, H, W, 3) uint8 RGB -> (M, H, W) float32 luma (ITU-R BT.601) in [0, 255]."""
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def spectral_residual(frames: np.ndarray) -> np.ndarray:
    """(M, 64, 64) saliency maps summing to 1 for (M, H, W, 3) uint8 RGB frames."""
    g = torch.from_numpy(grey(frames))[:, None]
    small = F.interpolate(g, size=(_SIDE, _SIDE), mode="area")[:, 0].numpy().astype(np.float64)
    spectrum = np.fft.fft2(small, axes=(-2, -1))
    log_amp = np.log(np.abs(spectrum) + 1e-8)
    residual = log_amp - uniform_filter(log_amp, size=(1, 3, 3), mode="nearest")
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)), axes=(-2, -1))) ** 2
    sal = gaussian_filter(sal, sigma=(0, 2.5, 2.5), mode="nearest")
    total = sal.sum(axis=(1, 2), keepdims=True)
    uniform = np.full_like(sal, 1.0 / (_SIDE * _SIDE))
    return np.where(total > 0, sal / np.where(total > 0, total, 1.0), uniform)


def saliency_stats(maps: np.ndarray) -> np.ndarray:
    """(M, 4): share of mass in the top 10% pixels, normalised entropy, mass in the central
    quarter of the area, centroid distance from the centre (1 = a corner)."""
    m, h, w = maps.shape
    flat = maps.reshape(m, -1)
    top = int(round(0.1 * flat.shape[1]))
    top_share = np.sort(flat, axis=1)[:, -top:].sum(axis=1)
    entropy = -(flat * np.log(np.clip(flat, 1e-12, None))).sum(axis=1) / np.log(flat.shape[1])
    centre = maps[:, h // 4 : h - h // 4, w // 4 : w - w // 4].sum(axis=(1, 2))
    ys = (np.arange(h) + 0.5) / h - 0.5
    xs = (np.arange(w) + 0.5) / w - 0.5
    cy = (maps.sum(axis=2) * ys).sum(axis=1)
    cx = (maps.sum(axis=1) * xs).sum(axis=1)
    offset = np.hypot(cx, cy) / np.hypot(0.5, 0.5)
    return np.stack([top_share, entropy, centre, offset], axis=1)


def edge_density(frames: np.ndarray) -> np.ndarray:
    """(M,) share of pixels on a Canny edge (thresholds 100/200 on 8-bit luma)."""
    g = np.clip(grey(frames), 0, 255).astype(np.uint8)
    return np.array([np.count_nonzero(cv2.Canny(f, 100, 200)) / f.size for f in g])


def composition_features(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (M, 5) features in `FEATURE_NAMES` order, and the (M, 2) saliency centroids
    (x, y in [0, 1]) kept for explanations."""
    maps = spectral_residual(frames)
    h, w = maps.shape[1:]
    cy = (maps.sum(axis=2) * ((np.arange(h) + 0.5) / h)).sum(axis=1)
    cx = (maps.sum(axis=1) * ((np.arange(w) + 0.5) / w)).sum(axis=1)
    feats = np.concatenate([saliency_stats(maps), edge_density(frames)[:, None]], axis=1)
    return feats, np.stack([cx, cy], axis=1)

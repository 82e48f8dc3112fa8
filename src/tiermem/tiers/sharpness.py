"""How sharp a frame is: the paper's FFT blur measure, and the share of fine detail.

`fft_blurriness` is the measure the M3-S feature script uses (the FFT blur detector widely
copied in the field, after Liu et al., "Image partial blur detection and classification",
CVPR 2008): resize the RGB frame to 500 pixels wide (aspect kept, OpenCV area interpolation,
as imutils' `resize`), convert it to grey (ITU-R 601 luma), take its 2-D FFT, zero a centred square of ±60 bins around DC in the shifted
spectrum, transform back, and average 20·ln|reconstruction| over the pixels. What is left after
removing the low frequencies is edges and texture, so a *blurred* frame scores *lower*. The
value is in log units of 8-bit grey levels (the script's Memento10k and LaMem frames are
uint8; its VideoMem frames were floats in [0, 1], which shifts every value by -20·ln 255, a
constant the head's standardisation removes). The zeroed square is [-60, 59] in both
frequency axes, as the script's slice gives; it is not symmetric, so the reconstruction is
complex and its modulus is what is logged.

Departure, on purpose: a flat frame has nothing left after the low frequencies go, and the
script's value is -inf; here |reconstruction| is floored at `MAGNITUDE_FLOOR` grey levels, so a
flat frame scores 20·ln(1e-3) ≈ -138 and the head sees a finite number. A frame under 120
pixels high after the resize has every row frequency zeroed (the script's slice would start
at a negative index and zero a few rows at the far edge instead).

`detail_share` (tiermem's earlier `blurriness`) is the share of a frame's spectral energy (DC
excluded) above a cutoff in cycles per pixel at the frame's own size: a 0-1 fraction, also
lower when blurred, and cheaper. Across 36 real 3-s clips it correlates with the paper's
measure at only r = 0.45, so both are kept.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.fft

#: The script resizes every frame to this width before its FFT.
FFT_WIDTH = 500
#: Half-side, in frequency bins, of the square of low frequencies zeroed.
FFT_RADIUS = 60
#: |reconstruction| below this many grey levels counts as this much (ln 0 is -inf).
MAGNITUDE_FLOOR = 1e-3
#: Frames per batched FFT. One: pocketfft over a batch of 500 x 500 frames (2 MB each in
#: complex64, beyond the cache) was measured slower than frame by frame here (84 vs 43 ms for
#: 15 frames, batch 2: 65 ms), and one frame keeps the working memory at about 7 MB.
FFT_BATCH = 1


def resize_to_width(frames: np.ndarray, width: int = FFT_WIDTH) -> np.ndarray:
    """(T, H, W, C) uint8 frames resized to `width` pixels wide, height int(H * width / W), with
    area interpolation as imutils' `resize` does. OpenCV resizes one image per call; stacking
    the frames as the channels of one image was measured 6x slower (46 vs 7 ms for 15 frames)."""
    t, h, w = frames.shape[:3]
    size = (width, max(1, int(h * width / w)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def low_frequency_bins(n: int, radius: int = FFT_RADIUS) -> np.ndarray:
    """Unshifted FFT indices of the frequencies -radius..radius-1 (all of them when n is smaller)."""
    if n <= 2 * radius:
        return np.arange(n)
    return np.arange(-radius, radius) % n


def resized_grey(frames: np.ndarray, width: int = FFT_WIDTH) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames resized to `width` pixels wide, then grey (ITU-R 601 luma,
    uint8): the pixels the FFT blur measure transforms, in the script's order (resize, then grey)."""
    resized = resize_to_width(frames, width)
    t, h, w, _ = resized.shape
    return cv2.cvtColor(resized.reshape(t * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(t, h, w)


def fft_blurriness(frames: np.ndarray, width: int = FFT_WIDTH, radius: int = FFT_RADIUS) -> np.ndarray:
    """The paper's FFT blur measure of every (T, H, W, 3) uint8 RGB frame: resize, grey, and the
    frame less its lowest frequencies, frame by frame (single precision); memory stays flat in T."""
    out = np.empty(len(frames), dtype=np.float32)
    for start in range(0, len(frames), FFT_BATCH):
        grey = resized_grey(frames[start : start + FFT_BATCH], width).astype(np.float32)
        magnitude = np.abs(_without_low_frequencies(grey, radius))
        np.maximum(magnitude, MAGNITUDE_FLOOR, out=magnitude)
        np.log(magnitude, out=magnitude)
        out[start : start + len(grey)] = 20.0 * magnitude.reshape(len(grey), -1).mean(
            axis=1, dtype=np.float64
        )
    return out


def _without_low_frequencies(grey: np.ndarray, radius: int) -> np.ndarray:
    """ifft2(fft2(grey) with the rows x columns square of low frequencies zeroed), (T, h, w) complex64.

    Computed as grey minus the square's own reconstruction, which needs the spectrum on the
    square alone: real FFTs of the rows, the square's columns transformed down, then back up
    and across. 990 one-dimensional FFTs of a 500 x 500 frame instead of fft2 and ifft2's
    2,000 (2.2 -> 1.2 ms a frame here); equal to them to float32 round-off.
    """
    t, h, w = grey.shape
    rows, cols = low_frequency_bins(h, radius), low_frequency_bins(w, radius)
    half = scipy.fft.rfft(grey, axis=2, workers=1)  # (t, h, w // 2 + 1): columns 0..w/2
    negative = cols > w // 2  # a real row's spectrum at -k is the conjugate of its spectrum at k
    band = half[:, :, np.where(negative, w - cols, cols)]
    band[:, :, negative] = np.conj(band[:, :, negative])
    square = np.zeros_like(band)
    square[:, rows] = scipy.fft.fft(band, axis=1, workers=1)[:, rows]
    low = np.zeros((t, h, w), np.complex64)
    low[:, :, cols] = scipy.fft.ifft(square, axis=1, workers=1, overwrite_x=True)
    low = scipy.fft.ifft(low, axis=2, workers=1, overwrite_x=True)
    return np.subtract(grey, low, out=low)


def detail_weights(h: int, w: int, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the (h, w // 2 + 1) rfft2 bins, flattened (float32): every bin but DC, and the
    bins above `cutoff` cycles/pixel. rfft2 stores half the spectrum: columns other than 0 and
    Nyquist stand for two bins."""
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    twice = np.full(radius.shape[1], 2.0)
    twice[0] = 1.0
    if w % 2 == 0:
        twice[-1] = 1.0
    weight = np.broadcast_to(twice, radius.shape)
    total_w = np.where(radius > 0, weight, 0.0).ravel().astype(np.float32)
    high_w = np.where(radius > cutoff, weight, 0.0).ravel().astype(np.float32)
    return total_w, high_w


def detail_share(grey: np.ndarray, cutoff: float) -> np.ndarray:
    """Per-frame share of spectral energy (DC excluded) above `cutoff` cycles/pixel, batched rfft2."""
    t, h, w = grey.shape
    spectrum = scipy.fft.rfft2(grey.astype(np.float32), axes=(1, 2), workers=1)
    power = (spectrum.real**2 + spectrum.imag**2).reshape(t, -1)
    total_w, high_w = detail_weights(h, w, cutoff)
    # einsum, not a BLAS product: each frame's sums in one order whatever its batch neighbours.
    total = np.einsum("tf,f->t", power, total_w)
    high = np.einsum("tf,f->t", power, high_w)
    return np.divide(high, total, out=np.zeros_like(high), where=total > 0)


__all__ = [
    "FFT_RADIUS",
    "FFT_WIDTH",
    "MAGNITUDE_FLOOR",
    "detail_share",
    "detail_weights",
    "fft_blurriness",
    "low_frequency_bins",
    "resize_to_width",
    "resized_grey",
]

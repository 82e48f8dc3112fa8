"""Low-level tier: the paper's colour, brightness, contrast, blur, motion, HOG and size features, plus
colourfulness, saturation and scene-cut rate; every per-frame feature summarised by its mean and
temporal std.

All features are computed on the whole (T, H, W, 3) clip at once (numpy over frames; OpenCV
colour conversions run on the frames stacked into one tall image). Python loops over frames
only wrap OpenCV calls that take one frame (optical flow of a pair, per-frame mean/std). The
reference implementation's per-frame skimage/imutils loop takes about 1250 ms per 45-frame
clip; the target here is <= 100 ms (figures: benchmarks/extract_low.py).

Units (the head standardises features; units matter to people reading them):

- ``brightness``: mean HSV value, V = max(R, G, B) / 255, in [0, 1].
- ``contrast``: std of the grey frame (ITU-R 601 luma) / 255.
- ``saturation``: mean HSV saturation (max - min) / max, in [0, 1].
- ``colourfulness``: Hasler & Süsstrunk (2003) on the 0-255 scale, so their published
  thresholds apply (about 33 "moderately", 59 "highly" colourful).
- ``blurriness``: share of the grey frame's spectral energy (DC excluded) above
  ``blur_cutoff`` cycles/pixel, by FFT of the ``size`` frame. High-frequency energy, so a
  *blurred* frame scores *lower*; a flat frame scores 0. (Name kept from the paper.)
- ``flow``: mean optical-flow magnitude between consecutive sampled frames, DIS flow computed at
  ``flow_size`` and reported in pixels at the decoded frame size per sampled-frame step.
- ``hog_pca_k``: projection on the k-th principal axis of HOG descriptors (9 orientations,
  8x8-pixel cells, 2x2-cell blocks, L2-Hys, hard orientation binning exactly as skimage's
  ``hog``, the reference) of the grey frame, on every ``hog_stride``-th sampled frame (default
  3: 15 of 45 frames, a third of the cost); the PCA is fitted on a training corpus (`fit`).
- ``size_orig``: bytes per second of the video stream alone (packet sizes, audio excluded).
- ``cut_rate``: scene cuts per second of video; a cut is a pair of consecutive sampled frames
  whose RGB histograms differ by more than ``cut_threshold`` (total-variation distance).
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import cv2
import numpy as np
import scipy.fft

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.tiers import register_tier
from tiermem.tiers.base import Tier
from tiermem.video.clip import Clip

#: Per-frame features, each reported as `<name>_mean` and `<name>_std`, in this order.
FRAME_FEATURES = ("brightness", "contrast", "saturation", "colourfulness", "blurriness", "flow")
#: Per-video features, reported once.
VIDEO_FEATURES = ("size_orig", "cut_rate")

HOG_ORIENTATIONS = 9
HOG_CELL = 8
HOG_EPS = 1e-5  # skimage's L2-Hys epsilon
#: Frames whose per-frame features are computed together (bounds memory; >= the default 45).
CHUNK_FRAMES = 64


# -- feature groups (each a function of the whole clip, so the benchmark can time them) --------


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
        "colourfulness": np.hypot(rg_stats[:, 1], yb_stats[:, 1]) + 0.3 * np.hypot(rg_stats[:, 0], yb_stats[:, 0]),
    }


def contrast(grey: np.ndarray) -> np.ndarray:
    """Per-frame std of the grey frame, on a 0-1 scale."""
    return np.array([cv2.meanStdDev(f)[1][0, 0] for f in grey], dtype=np.float32) / 255.0


def high_frequency_share(grey: np.ndarray, cutoff: float) -> np.ndarray:
    """Per-frame share of spectral energy (DC excluded) above `cutoff` cycles/pixel, batched rfft2."""
    t, h, w = grey.shape
    spectrum = scipy.fft.rfft2(grey.astype(np.float32), axes=(1, 2), workers=1)
    power = (spectrum.real**2 + spectrum.imag**2).reshape(t, -1)
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    # rfft2 stores half the spectrum: columns other than 0 and Nyquist stand for two bins.
    twice = np.full(radius.shape[1], 2.0)
    twice[0] = 1.0
    if w % 2 == 0:
        twice[-1] = 1.0
    weight = np.broadcast_to(twice, radius.shape)
    total_w = np.where(radius > 0, weight, 0.0).ravel().astype(np.float32)
    high_w = np.where(radius > cutoff, weight, 0.0).ravel().astype(np.float32)
    total = power @ total_w
    high = power @ high_w
    return np.divide(high, total, out=np.zeros_like(high), where=total > 0)


def flow_magnitudes(grey: np.ndarray, flow_size: int, preset: int) -> np.ndarray:
    """Mean DIS optical-flow magnitude of each consecutive frame pair, in pixels of the input size."""
    t, h, w = grey.shape
    if t < 2:
        return np.zeros(1, dtype=np.float32)
    small = cv2.resize(grey.reshape(t * h, w), (flow_size, t * flow_size), interpolation=cv2.INTER_AREA)
    small = small.reshape(t, flow_size, flow_size)
    dis = cv2.DISOpticalFlow_create(preset)
    flows = np.stack([dis.calc(small[i], small[i + 1], None) for i in range(t - 1)])
    # Scale each axis back to the input frame's pixels.
    flows *= np.array([w / flow_size, h / flow_size], dtype=np.float32)
    return np.sqrt((flows**2).sum(axis=-1)).reshape(t - 1, -1).mean(axis=1)


def hog_descriptors(grey: np.ndarray) -> np.ndarray:
    """HOG of every frame at once: (T, H, W) -> (T, D), equal to skimage.feature.hog per frame.

    9 unsigned orientations with hard binning, 8x8 cells (magnitude sums / 64), 2x2-cell blocks
    with L2-Hys normalisation, blocks in row-major order — skimage's defaults and layout.
    """
    g = grey.astype(np.float32, copy=False)
    t, h, w = g.shape
    g_row = np.zeros_like(g)
    g_col = np.zeros_like(g)
    g_row[:, 1:-1] = g[:, 2:] - g[:, :-2]
    g_col[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    n_rows, n_cols = h // HOG_CELL, w // HOG_CELL
    g_row = g_row[:, : n_rows * HOG_CELL, : n_cols * HOG_CELL]
    g_col = g_col[:, : n_rows * HOG_CELL, : n_cols * HOG_CELL]
    magnitude = np.sqrt(g_row * g_row + g_col * g_col)
    # Signed angle in (-pi, pi] -> one of 19 signed sectors floor(angle / 20deg) + 9 in 0..18;
    # histograms are taken over signed sectors and folded to 9 unsigned bins afterwards (cheaper
    # than folding 3 million angles): sector s is bin s - 9 for s >= 9, bin s for s < 9, and
    # the single angle pi (sector 18) is 0 degrees.
    sectors = 2 * HOG_ORIENTATIONS + 1
    index = np.floor(np.arctan2(g_row, g_col) * np.float32(HOG_ORIENTATIONS / np.pi))
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


def cut_count(frames: np.ndarray, threshold: float, bins: int = 16, step: int = 4) -> int:
    """Scene cuts among consecutive frames: RGB-histogram total-variation distance > `threshold`.

    Histograms are taken from every `step`-th pixel each way (4096 of a 256x256 frame: plenty
    for 3 x `bins` bins, and 16x cheaper).
    """
    t = len(frames)
    if t < 2:
        return 0
    px = frames[:, ::step, ::step].reshape(t, -1, 3)
    index = (px.astype(np.intp) * bins) // 256 + np.arange(3) * bins  # channel c -> bins c*B..
    index += (np.arange(t) * 3 * bins)[:, None, None]
    hist = np.bincount(index.ravel(), minlength=t * 3 * bins).reshape(t, 3, bins) / px.shape[1]
    distance = 0.5 * np.abs(np.diff(hist, axis=0)).sum(axis=2).mean(axis=1)  # TV, channel mean
    return int((distance > threshold).sum())


# -- the tier ------------------------------------------------------------------------------


@register_tier
class LowTier(Tier):
    """Low-level features of a clip; `fit` learns the HOG PCA on a training corpus.

    Parameters (all stored in `config`, hence in the feature cache key):
        hog_stride: HOG on every `hog_stride`-th sampled frame (1 = all). HOG is the costliest
            group; its temporal mean/std barely change when computed on 15 of 45 frames.
        pca_components: HOG PCA dimensions (the paper: 10).
        pca_frames_per_clip: at most this many evenly spaced frames per clip feed the PCA fit.
        pca_batch_rows: HOG rows per incremental PCA step (memory: rows x D x 4 bytes).
        flow_size: side of the frames DIS optical flow runs on (flow is rescaled to the input).
        flow_preset: cv2.DISOPTICAL_FLOW_PRESET_{ULTRAFAST=0, FAST=1, MEDIUM=2}. ULTRAFAST is
            within ~10% of the true motion of a translating texture (1-8 px/frame) at about
            a quarter of MEDIUM's cost.
        blur_cutoff: spatial frequency (cycles/pixel) above which energy counts as detail.
        cut_threshold: histogram distance between consecutive sampled frames that is a cut. In
            the sample clips the three hard cuts score 0.25, 0.33 and 0.70 (the 0.25 one is
            taxi -> bus right at the start of bikes_001), motion within a shot at most 0.16.
    """

    name: ClassVar[str] = "low"
    requires_fit: ClassVar[bool] = True
    #: HOG needs 2 x 2 cells of 8 pixels for one block: smaller frames have no HOG features.
    min_frame_size: ClassVar[int] = 2 * HOG_CELL

    def __init__(
        self,
        *,
        hog_stride: int = 3,
        pca_components: int = 10,
        pca_frames_per_clip: int = 9,
        pca_batch_rows: int = 512,
        flow_size: int = 128,
        flow_preset: int = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        blur_cutoff: float = 0.1,
        cut_threshold: float = 0.2,
    ) -> None:
        super().__init__(
            hog_stride=hog_stride,
            pca_components=pca_components,
            pca_frames_per_clip=pca_frames_per_clip,
            pca_batch_rows=pca_batch_rows,
            flow_size=flow_size,
            flow_preset=flow_preset,
            blur_cutoff=blur_cutoff,
            cut_threshold=cut_threshold,
        )
        self.hog_stride = hog_stride
        self.pca_components = pca_components
        self.pca_frames_per_clip = pca_frames_per_clip
        self.pca_batch_rows = pca_batch_rows
        self.flow_size = flow_size
        self.flow_preset = flow_preset
        self.blur_cutoff = blur_cutoff
        self.cut_threshold = cut_threshold
        self._hash: str | None = None

    @property
    def feature_names(self) -> list[str]:
        per_frame = list(FRAME_FEATURES) + [f"hog_pca_{k}" for k in range(self.pca_components)]
        return [f"{n}_{s}" for n in per_frame for s in ("mean", "std")] + list(VIDEO_FEATURES)

    # -- fitting -------------------------------------------------------------------------
    def fit(self, clips: Iterable[Clip], frames_per_clip: int | None = None) -> "LowTier":
        """Fit the HOG PCA on frames of `clips` (any iterable: clips are consumed one at a time).

        Up to `pca_frames_per_clip` evenly spaced frames per clip (or `frames_per_clip`, when
        larger, for a corpus of few clips); rows are fed to an incremental PCA in batches, so
        memory stays at one batch whatever the corpus size.
        """
        from sklearn.decomposition import IncrementalPCA

        per_clip = max(self.pca_frames_per_clip, frames_per_clip or 0)
        pca = IncrementalPCA(n_components=self.pca_components)
        buffer: list[np.ndarray] = []
        buffered = seen = 0
        for clip in clips:
            if min(clip.frames.shape[1:3]) < self.min_frame_size:
                raise DataMismatchError(
                    f"{clip.meta.path}: low tier needs frames of at least {self.min_frame_size} pixels a side "
                    f"for HOG, got {clip.frames.shape[2]}x{clip.frames.shape[1]}"
                )
            keep = np.unique(np.linspace(0, clip.num_frames - 1, per_clip).round().astype(int))
            rows = hog_descriptors(grey_frames(clip.frames[keep]))
            buffer.append(rows)
            buffered += len(rows)
            # Keep at least `pca_components` rows back so the last batch is never too small.
            if buffered >= self.pca_batch_rows + self.pca_components:
                batch = np.concatenate(buffer)
                pca.partial_fit(batch[: self.pca_batch_rows])
                buffer, buffered = [batch[self.pca_batch_rows :]], len(batch) - self.pca_batch_rows
                seen += self.pca_batch_rows
        if buffered:
            if seen + buffered < self.pca_components:
                raise TiermemError(
                    f"low tier: fitting the HOG PCA needs at least {self.pca_components} frames, "
                    f"got {seen + buffered}"
                )
            pca.partial_fit(np.concatenate(buffer))
            seen += buffered
        if not seen:
            raise TiermemError("low tier: fit got no clips (the HOG PCA needs a training corpus)")
        self.hog_pca_mean_ = pca.mean_.astype(np.float32)
        self.hog_pca_components_ = pca.components_.astype(np.float32)
        self.hog_pca_frames_ = seen
        self._hash = None
        return self

    def state_dict(self) -> dict[str, Any]:
        if not hasattr(self, "hog_pca_components_"):
            return {}
        return {
            "hog_pca_mean": self.hog_pca_mean_,
            "hog_pca_components": self.hog_pca_components_,
            "hog_pca_frames": int(self.hog_pca_frames_),
        }

    def load_state_dict(self, state: dict[str, Any]) -> "LowTier":
        mean = np.asarray(state["hog_pca_mean"], dtype=np.float32)
        components = np.asarray(state["hog_pca_components"], dtype=np.float32)
        if components.ndim != 2 or components.shape != (self.pca_components, mean.shape[0]):
            raise DataMismatchError(
                f"low tier state: HOG PCA components of shape {components.shape} do not match "
                f"{self.pca_components} components over a mean of length {mean.shape[0]}"
            )
        self.hog_pca_mean_ = mean
        self.hog_pca_components_ = components
        self.hog_pca_frames_ = int(state.get("hog_pca_frames", 0))
        self._hash = None
        return self

    def config_hash(self) -> str:
        # Hashing the 1.4 MB PCA for every clip would be wasted work: cache until the state changes.
        if self._hash is None:
            self._hash = super().config_hash()
        return self._hash

    # -- inference -----------------------------------------------------------------------
    def transform(self, clip: Clip, timings: dict[str, float] | None = None) -> np.ndarray:
        """Feature vector of one clip in `feature_names` order (float32).

        `timings`, when given, receives the seconds spent in each feature group (benchmarks).
        """
        if not hasattr(self, "hog_pca_components_"):
            raise TiermemError(
                "low tier: the HOG PCA is not fitted; call fit(clips) on a training corpus "
                "or load_state_dict() a fitted state first"
            )
        frames = clip.frames
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise DataMismatchError(
                f"{clip.meta.path}: low tier needs uint8 RGB frames (T, H, W, 3) with T >= 1, "
                f"got {frames.dtype} {frames.shape}"
            )
        clock = _Clock(timings)
        groups: dict[str, list[np.ndarray]] = collections.defaultdict(list)
        projected: list[np.ndarray] = []
        cuts = 0
        # Chunks of frames bound the working memory (several float copies of each frame) whatever
        # --frames is; a clip of up to CHUNK_FRAMES frames is one chunk. Flow and cuts compare
        # consecutive frames, so each later chunk starts with the previous chunk's last frame.
        for start in range(0, len(frames), CHUNK_FRAMES):
            chunk = frames[start : start + CHUNK_FRAMES]
            with clock("grey"):
                grey = grey_frames(chunk)
            with clock("colour"):
                for name, values in colour_features(chunk).items():
                    groups[name].append(values)
            with clock("contrast"):
                groups["contrast"].append(contrast(grey))
            with clock("blurriness"):
                groups["blurriness"].append(high_frequency_share(grey, self.blur_cutoff))
            with clock("flow"):
                pairs = grey if start == 0 else np.concatenate([grey_frames(frames[start - 1 : start]), grey])
                groups["flow"].append(flow_magnitudes(pairs, self.flow_size, self.flow_preset))
            with clock("cuts"):
                cuts += cut_count(frames[max(0, start - 1) : start + CHUNK_FRAMES], self.cut_threshold)
            strided = grey[(-start) % self.hog_stride :: self.hog_stride]  # every hog_stride-th frame of the clip
            if not len(strided):
                continue
            with clock("hog"):
                hog = hog_descriptors(strided)
                if hog.shape[1] != self.hog_pca_mean_.shape[0]:
                    raise DataMismatchError(
                        f"{clip.meta.path}: HOG of {frames.shape[2]}x{frames.shape[1]} frames has "
                        f"{hog.shape[1]} dimensions, the fitted PCA expects {self.hog_pca_mean_.shape[0]} "
                        "(fit and extract at the same frame size)"
                    )
                projected.append((hog - self.hog_pca_mean_) @ self.hog_pca_components_.T)
        per_frame = {name: np.concatenate(parts) for name, parts in groups.items()}
        projected_all = np.concatenate(projected)
        per_frame.update({f"hog_pca_{k}": projected_all[:, k] for k in range(self.pca_components)})
        duration = clip.meta.duration
        values = [
            stat
            for name in list(FRAME_FEATURES) + [f"hog_pca_{k}" for k in range(self.pca_components)]
            for stat in (float(np.mean(per_frame[name])), float(np.std(per_frame[name])))
        ]
        values += [clip.meta.video_bytes_per_second, cuts / duration if duration > 0 else 0.0]
        return np.asarray(values, dtype=np.float32)


class _Clock:
    """Adds the wall time of each `with clock(name):` block to `timings[name]` (when given)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

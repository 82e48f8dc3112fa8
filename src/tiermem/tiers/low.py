"""Low-level tier: the paper's colour, brightness, contrast, blur, motion, HOG and size features, plus
colourfulness, saturation and scene-cut rate; every per-frame feature summarised by its mean and
temporal std.

Per-frame work (statistics, HOG) and per-pair work (flow, histogram distance) run over many
frames at once (numpy over frames; OpenCV colour conversions on the frames stacked into one tall
image), then `aggregate` takes their means, stds and counts (`tiermem.tiers.per_frame`), so a
timeline computes each frame's work once for all the windows that hold it. The reference
implementation's per-frame skimage/imutils loop takes about 1250 ms per 45-frame clip; the
target here is <= 100 ms (figures: benchmarks/extract_low.py).

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
from tiermem.tiers.per_frame import FrameReads, FrameTier, Work
from tiermem.video.clip import Clip, VideoMeta

#: Per-frame features, each reported as `<name>_mean` and `<name>_std`, in this order.
FRAME_FEATURES = ("brightness", "contrast", "saturation", "colourfulness", "blurriness", "flow")
#: Per-video features, reported once.
VIDEO_FEATURES = ("size_orig", "cut_rate")

HOG_ORIENTATIONS = 9
HOG_CELL = 8
HOG_EPS = 1e-5  # skimage's L2-Hys epsilon
#: Per-frame statistics computed in one pass over a frame ("stats"), in this order.
STAT_FEATURES = ("brightness", "contrast", "saturation", "colourfulness", "blurriness")


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


# -- the tier ------------------------------------------------------------------------------


@register_tier
class LowTier(FrameTier):
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
    #: Frames per batch of per-frame work: bounds the working memory (HOG holds several float
    #: copies of each frame) whatever --frames is.
    frame_batch: ClassVar[int] = 32
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
        self._timings: dict[str, float] | None = None

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

    # -- inference: per-frame work, then the clip's statistics ---------------------------
    def reads(self, num_frames: int) -> FrameReads:
        """Statistics of every sampled frame, HOG of every `hog_stride`-th, motion of every pair."""
        return FrameReads(
            frames={"stats": np.arange(num_frames), "hog": np.arange(0, num_frames, self.hog_stride)},
            pairs={"motion": np.arange(num_frames - 1)},
        )

    def check_frames(self, frames: np.ndarray, path: str) -> None:
        if not hasattr(self, "hog_pca_components_"):
            raise TiermemError(
                "low tier: the HOG PCA is not fitted; call fit(clips) on a training corpus "
                "or load_state_dict() a fitted state first"
            )
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise DataMismatchError(
                f"{path}: low tier needs uint8 RGB frames (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}"
            )
        h, w = frames.shape[1:3]
        dims = max(0, h // HOG_CELL - 1) * max(0, w // HOG_CELL - 1) * 4 * HOG_ORIENTATIONS
        if dims != self.hog_pca_mean_.shape[0]:
            raise DataMismatchError(
                f"{path}: HOG of {w}x{h} frames has {dims} dimensions, the fitted PCA expects "
                f"{self.hog_pca_mean_.shape[0]} (fit and extract at the same frame size)"
            )

    def per_frame(self, name: str, frames: np.ndarray) -> np.ndarray:
        clock = _Clock(self._timings)
        with clock("grey"):
            grey = grey_frames(frames)
        if name == "hog":
            with clock("hog"):
                return (hog_descriptors(grey) - self.hog_pca_mean_) @ self.hog_pca_components_.T
        with clock("colour"):
            colour = colour_features(frames)
        with clock("contrast"):
            spread = contrast(grey)
        with clock("blurriness"):
            blur = high_frequency_share(grey, self.blur_cutoff)
        columns = {**colour, "contrast": spread, "blurriness": blur}
        return np.stack([columns[n] for n in STAT_FEATURES], axis=1).astype(np.float32)

    def per_pair(self, name: str, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        clock = _Clock(self._timings)
        with clock("flow"):
            flow = pair_flow(grey_frames(first), grey_frames(second), self.flow_size, self.flow_preset)
        with clock("cuts"):
            distance = histogram_distance(first, second)
        return np.stack([flow, distance], axis=1).astype(np.float32)

    def aggregate(self, work: Work, meta: VideoMeta, times: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        motion = work["motion"].reshape(-1, 2)
        per_frame = {n: work["stats"][:, j] for j, n in enumerate(STAT_FEATURES)}
        # A one-frame clip has no pair: it shows no motion.
        per_frame["flow"] = motion[:, 0] if len(motion) else np.zeros(1, np.float32)
        hog = work["hog"].reshape(-1, self.pca_components)
        per_frame.update({f"hog_pca_{k}": hog[:, k] for k in range(self.pca_components)})
        values = [
            stat
            for name in list(FRAME_FEATURES) + [f"hog_pca_{k}" for k in range(self.pca_components)]
            for stat in (float(np.mean(per_frame[name])), float(np.std(per_frame[name])))
        ]
        cuts = np.flatnonzero(motion[:, 1] > self.cut_threshold)
        duration = meta.duration
        values += [meta.video_bytes_per_second, len(cuts) / duration if duration > 0 else 0.0]
        facts = {"cuts_at": [round(float(times[i + 1]), 2) for i in cuts]} if len(cuts) else {}
        return np.asarray(values, dtype=np.float32), facts

    def transform(self, clip: Clip, timings: dict[str, float] | None = None) -> np.ndarray:
        """Feature vector of one clip in `feature_names` order (float32).

        `timings`, when given, receives the seconds spent in each feature group (benchmarks).
        """
        self._timings = timings
        try:
            return self.transform_batch([clip]).values[0]
        finally:
            self._timings = None


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

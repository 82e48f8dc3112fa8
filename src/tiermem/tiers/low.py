"""Low-level tier: the paper's brightness, contrast, blur, motion, HOG and size features, plus
saturation, colourfulness, a detail share and the scene-cut rate. Every per-frame feature is
summarised by its mean and its temporal std over the clip's sampled frames.

Per-frame work (statistics, texture) and per-pair work (flow, histogram distance) run over many
frames at once (numpy over frames; OpenCV calls on the frames stacked into one tall image or
into the channels of one image; the groups live in `frame_stats`, `sharpness`, `hog` and
`motion`), then `aggregate` takes their means, stds and counts
(`tiermem.tiers.per_frame`), so a timeline computes each frame's work once for all the windows
that hold it. Figures: benchmarks/extract_low.py.

Devices: placed on a CUDA device (`on("cuda")`), the tier runs its costliest per-frame
operations, the FFT blur measure, the detail share and HOG, in torch on the GPU
(`tiermem.tiers.low_torch`, equal to the numpy versions within stated tolerances; its features
are cached under their own key, as every tier's on CUDA). Everything else stays on the CPU:
colour statistics, contrast, the resize before the FFT, the scene cuts, and the optical flow:
DIS is an OpenCV CPU algorithm (the opencv-python wheels have no CUDA), and a torch DIS that
matched it is beyond this tier. On the CPU the tier uses numpy, scipy and OpenCV and does not
import torch: torch was slower there at one thread (benchmarks/low_ops.py).

What each feature is, where it comes from, and where tiermem departs from the M3-S feature
script (`gen_features.py` of the authors' public code) on purpose:

- ``brightness``: mean HSV value, V = max(R, G, B) / 255, in [0, 1]. The script's
  `_get_brightness` takes `hsv[0].mean()`, the mean of H, S and V over the *first pixel row*
  only; tiermem averages V over every pixel, which is what the paper describes.
- ``contrast``: std of the grey frame (ITU-R 601 luma) / 255: the script's PIL `ImageStat`
  stddev of the grey frame, on a 0-1 scale instead of 0-255.
- ``saturation``: mean HSV saturation (max - min) / max, in [0, 1]. Not in the paper.
- ``colourfulness``: Hasler & Süsstrunk (2003) on the 0-255 scale, so their published
  thresholds apply (about 33 "moderately", 59 "highly" colourful). Not in the paper.
- ``blurriness``: the script's FFT blur measure (`tiermem.tiers.sharpness.fft_blurriness`):
  frame resized to 500 px wide, low frequencies (±60 bins) zeroed, mean of 20·ln|inverse FFT|.
  Lower when blurred. Departures: a flat frame scores about -138 instead of -inf, and it is
  computed on every ``hog_stride``-th frame (the script: every frame), as HOG is.
- ``detail_share``: share of the grey frame's spectral energy (DC excluded) above
  ``blur_cutoff`` cycles/pixel at the sampled frame size, in [0, 1]; lower when blurred, 0 on
  a flat frame. Tiermem's own (its earlier ``blurriness``); r = 0.45 with the paper's measure.
- ``flow``: mean optical-flow magnitude between consecutive sampled frames, DIS flow computed
  at ``flow_size`` and reported in pixels at the decoded frame size per sampled-frame step. The
  paper's `meanOF` is read from precomputed flow outside the script, means only.
- ``hog_pca_k``: projection on the k-th principal axis of HOG descriptors (9 orientations,
  8x8-pixel cells, 2x2-cell blocks, L2-Hys, hard orientation binning exactly as skimage's
  ``hog``) on every ``hog_stride``-th sampled frame (default 3: 15 of 45 frames, a third of
  the cost); the PCA is fitted on a training corpus (`fit`). Departures: HOG of the grey frame
  (the script: skimage's multichannel HOG of the RGB frame), an incremental PCA of up to
  ``pca_frames_per_clip`` frames per training clip, not whitened (the script: first frame of
  each training video, whitened; the head standardises its inputs anyway).
- ``size_orig``: bytes per second of the video stream alone (packet sizes, audio excluded).
  The script takes the byte size of the stream copied without audio; per second, clips of
  different lengths compare.
- ``cut_rate``: scene cuts per second of video; a cut is a pair of consecutive sampled frames
  whose RGB histograms differ by more than ``cut_threshold`` (total-variation distance). Not
  in the paper.

The script also reports temporal stds, but the paper's published runs train on means only
(`USE_TEMPORAL_STD = False`); tiermem keeps both and lets the head weigh them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.runtime import sync_threads
from tiermem.tiers import register_tier
from tiermem.tiers.frame_stats import colour_features, contrast, grey_frames
from tiermem.tiers.hog import HOG_CELL, hog_descriptors, hog_dims, project_rows
from tiermem.tiers.low_fitting import HogPcaFitting
from tiermem.tiers.motion import histogram_distance, pair_flow
from tiermem.tiers.per_frame import FrameReads, FrameTier, Work, WorkClock
from tiermem.tiers.sharpness import detail_share, fft_blurriness
from tiermem.video.clip import Clip, VideoMeta

if TYPE_CHECKING:
    from tiermem.tiers.low_torch import TorchOps

#: Per-frame features, each reported as `<name>_mean` and `<name>_std`, in this order.
FRAME_FEATURES = (
    "brightness",
    "contrast",
    "saturation",
    "colourfulness",
    "blurriness",
    "detail_share",
    "flow",
)
#: Per-video features, reported once.
VIDEO_FEATURES = ("size_orig", "cut_rate")
#: Features tiermem adds to the paper's (left out with ``extras=False``).
EXTRA_FEATURES = ("saturation", "colourfulness", "detail_share", "cut_rate")

#: Per-frame statistics computed in one pass over a frame ("stats"), in this order.
STAT_FEATURES = ("brightness", "contrast", "saturation", "colourfulness", "detail_share")


class _CpuOps:
    """The costly per-frame operations on the CPU: numpy, scipy and OpenCV (`TorchOps` on a GPU)."""

    fft_blurriness = staticmethod(fft_blurriness)
    detail_share = staticmethod(detail_share)
    hog_descriptors = staticmethod(hog_descriptors)


# -- the tier ------------------------------------------------------------------------------


@register_tier
class LowTier(HogPcaFitting, FrameTier):
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
        blur_cutoff: spatial frequency (cycles/pixel) above which energy counts as detail
            (`detail_share`).
        cut_threshold: histogram distance between consecutive sampled frames that is a cut. In
            the sample clips the three hard cuts score 0.25, 0.33 and 0.70 (the 0.25 one is
            taxi -> bus right at the start of bikes_001), motion within a shot at most 0.16.
        hog_colour: HOG of the RGB frame (skimage's multichannel HOG) instead of the grey one.
        pca_whiten: scale each HOG PCA axis to unit variance on the fitting frames.
        temporal_std: report each per-frame feature's temporal std beside its mean.
        extras: keep the features the paper does not have (saturation, colourfulness,
            detail_share, cut_rate).
        The M3-S reference variant (`tiermem.presets`): hog_colour, pca_whiten,
        pca_frames_per_clip=1 (the first frame of each training video), no temporal std, no
        extras: 15 features.
    """

    name: ClassVar[str] = "low"
    requires_fit: ClassVar[bool] = True
    fits_on_pass: ClassVar[bool] = True
    #: 2: blurriness became the paper's FFT measure; the earlier one is detail_share.
    #: 3: per-frame sums in a fixed order, so a video's features do not depend on its batch.
    #: 4: the FFT blur measure from the spectrum's low square alone (equal to float32 round-off).
    version: ClassVar[int] = 4
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
        hog_colour: bool = False,
        pca_whiten: bool = False,
        temporal_std: bool = True,
        extras: bool = True,
    ) -> None:
        # The reference variant's switches enter `config` (hence the cache key) only when set,
        # so features cached with the defaults keep their key.
        variant = {
            k: v
            for k, v in (
                ("hog_colour", hog_colour),
                ("pca_whiten", pca_whiten),
                ("temporal_std", temporal_std),
                ("extras", extras),
            )
            if v != {"temporal_std": True, "extras": True}.get(k, False)
        }
        super().__init__(
            **variant,
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
        self.hog_colour = bool(hog_colour)
        self.pca_whiten = bool(pca_whiten)
        self.temporal_std = bool(temporal_std)
        self.extras = bool(extras)
        self._hash: str | None = None
        self._timings: dict[str, float] | None = None
        self._ops: type[_CpuOps] | TorchOps = _CpuOps

    @property
    def uses_device(self) -> bool:
        """True: the FFT blur measure, the detail share and HOG run on a GPU when placed on one."""
        return True

    def on(self, device: str) -> "LowTier":
        """Run the FFT blur measure, the detail share and HOG on `device` (auto, cpu or cuda):
        torch on CUDA, numpy on the CPU. Flow and the other groups stay on the CPU."""
        super().on(device)
        if self.device == "cpu":
            self._ops = _CpuOps
        else:
            from tiermem.tiers.low_torch import TorchOps

            self._ops = TorchOps(self.device)
        sync_threads()  # resolving auto or cuda imported torch: give its pool the threads asked for
        self._hash = None  # the device is part of the cache key
        return self

    @property
    def _frame_features(self) -> list[str]:
        named = [n for n in FRAME_FEATURES if self.extras or n not in EXTRA_FEATURES]
        return named + [f"hog_pca_{k}" for k in range(self.pca_components)]

    @property
    def _video_features(self) -> list[str]:
        return [n for n in VIDEO_FEATURES if self.extras or n not in EXTRA_FEATURES]

    @property
    def feature_names(self) -> list[str]:
        stats = ("mean", "std") if self.temporal_std else ("mean",)
        return [f"{n}_{s}" for n in self._frame_features for s in stats] + self._video_features

    def check_saved_features(self, names: Sequence[str]) -> str | None:
        if list(names) == self.feature_names:
            return None
        if "blurriness_mean" in names and "detail_share_mean" not in names:
            return (
                f"its low tier has the {len(names)} features of an earlier tiermem, whose blurriness "
                "is now detail_share and whose place the paper's FFT measure took; refit the model"
            )
        return (
            f"its low block holds {len(names)} features, but the low tier as configured gives "
            f"{len(self.feature_names)}; refit the model"
        )

    def config_hash(self) -> str:
        # Hashing the 1.4 MB PCA for every clip would be wasted work: cache until the state changes.
        if self._hash is None:
            self._hash = super().config_hash()
        return self._hash

    # -- inference: per-frame work, then the clip's statistics ---------------------------
    def reads(self, num_frames: int) -> FrameReads:
        """Statistics of every sampled frame; texture (the FFT blur measure and HOG, the costly
        ones) of every `hog_stride`-th; motion of every pair."""
        return FrameReads(
            frames={"stats": np.arange(num_frames), "texture": np.arange(0, num_frames, self.hog_stride)},
            pairs={"motion": np.arange(num_frames - 1)},
        )

    def check_frames(self, frames: np.ndarray, path: str) -> None:
        if not hasattr(self, "hog_pca_components_"):
            raise TiermemError(
                "low tier: the HOG PCA is not fitted; call fit(clips) on a training corpus "
                "or load_state_dict() a fitted state first"
            )
        self._check_layout(frames, path)
        h, w = frames.shape[1:3]
        self._check_dims(hog_dims(h, w), f"{path}: HOG of {w}x{h} frames")

    def _check_layout(self, frames: np.ndarray, path: str) -> None:
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise DataMismatchError(
                f"{path}: low tier needs uint8 RGB frames (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}"
            )

    def _check_size(self, frames: np.ndarray, path: str) -> None:
        if min(frames.shape[1:3]) < self.min_frame_size:
            raise DataMismatchError(
                f"{path}: low tier needs frames of at least {self.min_frame_size} pixels a side "
                f"for HOG, got {frames.shape[2]}x{frames.shape[1]}"
            )

    def _check_dims(self, dims: int, what: str) -> None:
        if dims != self.hog_pca_mean_.shape[0]:
            raise DataMismatchError(
                f"{what} has {dims} dimensions, the fitted PCA expects "
                f"{self.hog_pca_mean_.shape[0]} (fit and extract at the same frame size)"
            )

    def per_frame(self, name: str, frames: np.ndarray) -> np.ndarray:
        clock = WorkClock(self._timings)
        with clock("grey"):
            grey = grey_frames(frames)
        if name == "hog":  # raw HOG rows (the fit's)
            with clock("hog"):
                return self._ops.hog_descriptors(self._hog_input(frames, grey))
        if name in ("texture", "texture_raw"):  # [blurriness, hog_pca_0..k-1] or [blurriness, HOG row]
            with clock("blurriness"):
                blur = self._ops.fft_blurriness(frames)
            with clock("hog"):
                hog = self._ops.hog_descriptors(self._hog_input(frames, grey))
                if name == "texture":
                    hog = project_rows(hog - self.hog_pca_mean_, self.hog_pca_components_)
            return np.concatenate([blur[:, None], hog], axis=1).astype(np.float32)
        with clock("colour"):
            colour = colour_features(frames)
        with clock("contrast"):
            spread = contrast(grey)
        with clock("detail"):
            detail = self._ops.detail_share(grey, self.blur_cutoff)
        columns = {**colour, "contrast": spread, "detail_share": detail}
        return np.stack([columns[n] for n in STAT_FEATURES], axis=1).astype(np.float32)

    def _hog_input(self, frames: np.ndarray, grey: np.ndarray | None = None) -> np.ndarray:
        """The frames HOG reads: RGB with `hog_colour`, else grey."""
        if self.hog_colour:
            return frames
        return grey if grey is not None else grey_frames(frames)

    def per_pair(self, name: str, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        clock = WorkClock(self._timings)
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
        texture = work["texture"].reshape(-1, 1 + self.pca_components)
        per_frame["blurriness"] = texture[:, 0]
        per_frame.update({f"hog_pca_{k}": texture[:, 1 + k] for k in range(self.pca_components)})
        values = [
            stat
            for name in self._frame_features
            for stat in (float(np.mean(per_frame[name])), float(np.std(per_frame[name])))[
                : 1 + self.temporal_std
            ]
        ]
        cuts = np.flatnonzero(motion[:, 1] > self.cut_threshold)
        duration = meta.duration
        video = {
            "size_orig": meta.video_bytes_per_second,
            "cut_rate": len(cuts) / duration if duration > 0 else 0.0,
        }
        values += [video[n] for n in self._video_features]
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

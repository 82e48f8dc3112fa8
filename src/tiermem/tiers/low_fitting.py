"""How the low tier learns its HOG PCA: from clips decoded for it, or on the extraction's own pass.

`fit` reads a few evenly spaced frames of each training clip, takes their HOG descriptors and
feeds them to an incremental PCA (`tiermem.tiers.hog_pca`). So that a run does not decode its
fitting sample twice, a clip can also be `defer`red: all its work done, with the raw HOG rows
of its texture frames kept in place of their projection and the rows it gives the fit; once
the fit has every sampled clip's rows, `complete` projects them and gives the clip's features,
equal to `transform`'s. The fitted state (mean, axes, frame count) round-trips through
`state_dict` as float32 arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.tiers.hog import hog_dims, project_rows
from tiermem.tiers.hog_pca import HogPcaFit, fit_frame_indices
from tiermem.tiers.per_frame import DeferredClip, Picked
from tiermem.video.clip import Clip

#: The largest magnitude a fitted HOG PCA holds (HOG values are at most 1; whitening divides by
#: the axes' spreads): anything beyond comes from a damaged or foreign file.
MAX_STATE_VALUE = 1e12


class HogPcaFitting:
    """The low tier's learning (a mixin of `tiermem.tiers.low.LowTier`, which supplies the
    per-frame work: `clip_work`, `run_frames`, `aggregate`, its HOG input and checks)."""

    pca_components: int
    pca_batch_rows: int
    pca_whiten: bool
    pca_frames_per_clip: int
    hog_stride: int
    _hash: str | None

    def fit(self, clips: Iterable[Clip], frames_per_clip: int | None = None) -> "HogPcaFitting":
        """Fit the HOG PCA on frames of `clips` (any iterable: clips are consumed one at a time).

        Up to `pca_frames_per_clip` evenly spaced frames per clip (or `frames_per_clip`, when
        larger, for a corpus of few clips); rows are fed to an incremental PCA in batches, so
        memory stays at one batch whatever the corpus size.
        """
        fit = self.start_fit()
        for clip in clips:
            fit.add(self.fit_rows(clip, frames_per_clip))
        fit.finish()
        return self

    def fit_rows(self, clip: Clip, frames_per_clip: int | None = None) -> np.ndarray:
        """HOG rows of the clip's evenly spaced fitting frames (see `fit`)."""
        self._check_size(clip.frames, clip.meta.path)
        keep = fit_frame_indices(clip.num_frames, self._fit_frames(frames_per_clip))
        return self._ops.hog_descriptors(self._hog_input(clip.frames[keep]))

    def start_fit(self) -> HogPcaFit:
        """An incremental HOG PCA fit that sets this tier's state when finished."""
        return HogPcaFit(self.pca_components, self.pca_batch_rows, self.pca_whiten, into=self._set_pca)

    def _set_pca(self, mean: np.ndarray, axes: np.ndarray, rows: int) -> None:
        self.hog_pca_mean_, self.hog_pca_components_, self.hog_pca_frames_ = mean, axes, rows
        self._hash = None

    def deferred_bytes(self, num_frames: int, size: int) -> int:
        """The raw HOG rows (and blur measure) of a deferred clip's texture frames, float32."""
        return len(range(0, num_frames, self.hog_stride)) * (1 + hog_dims(size, size)) * 4

    def defer(self, clip: Clip, frames_per_clip: int | None = None) -> DeferredClip:
        """The clip's work before the HOG PCA is fitted: every group, with the raw HOG rows of
        its texture frames in place of their projection, and its `fit_rows` (reusing the HOG
        of fitting frames that are texture frames too). `complete` finishes it once fitted."""
        self._check_size(clip.frames, clip.meta.path)
        self._check_layout(clip.frames, clip.meta.path)
        plan = self.reads(clip.num_frames)
        work = self.clip_work(clip.frames, computations={"texture": "texture_raw"})
        texture = plan.frames["texture"]
        fitting = fit_frame_indices(clip.num_frames, self._fit_frames(frames_per_clip))
        shared = np.isin(fitting, texture)
        rows = np.zeros((len(fitting), work["texture"].shape[1] - 1), np.float32)
        rows[shared] = work["texture"][np.searchsorted(texture, fitting[shared]), 1:]
        if not shared.all():
            rows[~shared] = self.run_frames("hog", Picked(clip.frames, fitting[~shared]))
        return DeferredClip(work, clip.meta, clip.times, rows)

    def complete(self, deferred: DeferredClip) -> tuple[np.ndarray, dict[str, Any]]:
        """A deferred clip's features and facts, now that the HOG PCA is fitted: equal to
        `transform` of the clip (HOG rows are projected one by one, in a fixed order)."""
        raw = deferred.work["texture"]
        if not hasattr(self, "hog_pca_components_"):
            raise TiermemError("low tier: complete() needs the HOG PCA fitted (fit_from_rows)")
        self._check_dims(raw.shape[1] - 1, f"{deferred.meta.path}: HOG of its frames")
        hog = project_rows(raw[:, 1:] - self.hog_pca_mean_, self.hog_pca_components_)
        texture = np.concatenate([raw[:, :1], hog], axis=1).astype(np.float32)
        return self.aggregate({**deferred.work, "texture": texture}, deferred.meta, deferred.times)

    def _fit_frames(self, frames_per_clip: int | None) -> int:
        return max(self.pca_frames_per_clip, frames_per_clip or 0)

    def state_dict(self) -> dict[str, Any]:
        if not hasattr(self, "hog_pca_components_"):
            return {}
        return {
            "hog_pca_mean": self.hog_pca_mean_,
            "hog_pca_components": self.hog_pca_components_,
            "hog_pca_frames": int(self.hog_pca_frames_),
        }

    def load_state_dict(self, state: dict[str, Any]) -> "HogPcaFitting":
        """Take a fitted HOG PCA; refuses one of the wrong shape or with values no fit gives."""
        with np.errstate(over="ignore", invalid="ignore"):  # judged below, not warned about
            mean = np.asarray(state["hog_pca_mean"], dtype=np.float32)
            components = np.asarray(state["hog_pca_components"], dtype=np.float32)
        for name, values in (("mean", mean), ("components", components)):
            finite = np.isfinite(values)
            if not finite.all():
                raise DataMismatchError(
                    f"low tier state: the HOG PCA {name} holds {int((~finite).sum())} NaN or infinite values"
                )
            if values.size and float(np.abs(values).max()) > MAX_STATE_VALUE:
                raise DataMismatchError(
                    f"low tier state: the HOG PCA {name} holds {float(np.abs(values).max()):.3g}, beyond any fit "
                    f"(at most {MAX_STATE_VALUE:g})"
                )
        if mean.ndim != 1 or components.ndim != 2 or components.shape != (self.pca_components, mean.shape[0]):
            raise DataMismatchError(
                f"low tier state: HOG PCA components of shape {components.shape} do not match "
                f"{self.pca_components} components over a mean of length {mean.shape[0]}"
            )
        self.hog_pca_mean_ = mean
        self.hog_pca_components_ = components
        self.hog_pca_frames_ = int(state.get("hog_pca_frames", 0))
        self._hash = None
        return self


__all__ = ["HogPcaFitting"]

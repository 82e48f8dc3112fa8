"""Kernel ridge on caption embeddings, small enough to ship: Nyström landmarks, folded.

A video's captions are points on the unit sphere of a sentence encoder. The model is kernel
ridge regression with the RBF kernel k(a, b) = exp(-gamma·|a - b|²) on the *mean feature map*
of a video's captions (a set kernel: two videos are alike when their captions are, on average),
approximated with `landmarks` Nyström centres drawn from the training captions (Williams &
Seeger, 2001). The score is linear in each caption's feature map, so a video's score is exactly
the mean of its captions' scores: one description can be scored alone, and five captions
average.

Fitting: φ(c) = k(c, L) · N with N = K_LL^{-1/2}; ridge (alpha by leave-one-out) on the
per-video means of φ. Saved: the landmarks L (float16, rounded *before* fitting so the saved
model is the fitted one), v = N·w and the intercept, so scoring is k(c, L)·v + b.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tiermem.errors import DataMismatchError


def rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """exp(-gamma·|a_i - b_j|²) for every row pair, float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-gamma * np.maximum(sq, 0.0))


def mean_by_owner(values: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Row means of `values` grouped by `owner` (0..n-1, each owner at least once)."""
    sums = np.zeros((n, values.shape[1]))
    np.add.at(sums, owner, values)
    counts = np.bincount(owner, minlength=n)
    if (counts == 0).any():
        raise DataMismatchError(f"video #{int(np.flatnonzero(counts == 0)[0])} has no caption")
    return sums / counts[:, None]


class CaptionKernelRidge:
    """RBF kernel ridge on caption embeddings with `landmarks` Nyström centres (seed `seed`)."""

    def __init__(
        self,
        landmarks: int = 1000,
        gamma: float = 0.5,
        alphas: tuple[float, ...] | None = None,
        seed: int = 0,
    ) -> None:
        self.landmarks = int(landmarks)
        self.gamma = float(gamma)
        self.alphas = tuple(alphas) if alphas is not None else tuple(np.logspace(-4, 2, 19))
        self.seed = int(seed)

    def get_params(self) -> dict[str, Any]:
        return {
            "landmarks": self.landmarks,
            "gamma": self.gamma,
            "alphas": list(self.alphas),
            "seed": self.seed,
        }

    def fit(self, embeddings: np.ndarray, owner: np.ndarray, y: np.ndarray) -> "CaptionKernelRidge":
        """`embeddings` (captions, d), `owner[i]` the video of caption i, `y` one score per video."""
        from sklearn.linear_model import RidgeCV

        y = np.asarray(y, dtype=np.float64)
        owner = np.asarray(owner)
        rng = np.random.default_rng(self.seed)
        pick = rng.choice(len(embeddings), size=min(self.landmarks, len(embeddings)), replace=False)
        centres = np.asarray(embeddings[np.sort(pick)], dtype=np.float16).astype(np.float64)
        values, vectors = np.linalg.eigh(rbf(centres, centres, self.gamma))
        keep = values > 1e-12 * values.max()  # the kernel matrix's numerical rank
        root = vectors[:, keep] / np.sqrt(values[keep])  # K^{-1/2} restricted to its range
        features = mean_by_owner(rbf(embeddings, centres, self.gamma) @ root, owner, len(y))
        ridge = RidgeCV(alphas=self.alphas).fit(features, y)
        self.landmarks_ = centres.astype(np.float16)
        self.coef_ = (root @ ridge.coef_).astype(np.float32).astype(np.float64)  # as saved
        self.intercept_ = float(ridge.intercept_)
        self.alpha_ = float(ridge.alpha_)
        return self

    def predict_captions(self, embeddings: np.ndarray) -> np.ndarray:
        """One score per caption."""
        return rbf(embeddings, self.landmarks_.astype(np.float64), self.gamma) @ self.coef_ + self.intercept_

    def state(self) -> dict[str, np.ndarray]:
        return {
            "kernel.landmarks": self.landmarks_,
            "kernel.coef": self.coef_.astype(np.float32),
            "kernel.intercept": np.array([self.intercept_], np.float64),
        }

    def load_state(self, arrays: dict[str, np.ndarray], where: str) -> "CaptionKernelRidge":
        landmarks, coef = arrays["kernel.landmarks"], arrays["kernel.coef"]
        if landmarks.ndim != 2 or coef.shape != (landmarks.shape[0],):
            raise DataMismatchError(
                f"{where}: kernel landmarks {landmarks.shape} and coefficients {coef.shape} do not fit"
            )
        self.landmarks_ = landmarks.astype(np.float16)
        self.coef_ = coef.astype(np.float64)
        self.intercept_ = float(arrays["kernel.intercept"][0])
        return self


__all__ = ["CaptionKernelRidge", "mean_by_owner", "rbf"]

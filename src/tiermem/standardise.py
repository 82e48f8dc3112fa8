"""Per-column z-scores with statistics of a fitting set: the one standardiser of tiermem.

Heads standardise their inputs with the training split's statistics, distinctiveness methods
their context before PCA, and the report's t-SNE maps each block before embedding. A constant
column (std <= 1e-12) keeps unit scale, so it passes through centred instead of dividing by 0.
Fitted statistics are plain arrays, saved and loaded as data.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Below this standard deviation a column counts as constant.
MIN_STD = 1e-12


class Standardiser:
    """``(X - mean_) / scale_`` with the mean and standard deviation of the rows given to `fit`."""

    def fit(self, X: np.ndarray, columns: np.ndarray | None = None) -> "Standardiser":
        """Statistics of `X`'s columns; with a boolean mask `columns`, only those are z-scored
        and the others pass through unchanged (mean 0, scale 1)."""
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > MIN_STD, std, 1.0)
        if columns is not None:
            keep = np.asarray(columns, dtype=bool)
            self.mean_ = np.where(keep, self.mean_, 0.0)
            self.scale_ = np.where(keep, self.scale_, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_.astype(np.float64), "scale": self.scale_.astype(np.float64)}

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray]) -> "Standardiser":
        s = cls()
        s.mean_ = np.asarray(state["mean"], dtype=np.float64)
        s.scale_ = np.asarray(state["scale"], dtype=np.float64)
        return s

    @classmethod
    def identity(cls, n_features: int) -> "Standardiser":
        """A standardiser that leaves data unchanged (zero mean, unit scale)."""
        return cls.from_state({"mean": np.zeros(n_features), "scale": np.ones(n_features)})


def standardise(X: np.ndarray) -> np.ndarray:
    """z-scores of `X` with its own column statistics."""
    return Standardiser().fit_transform(X)


__all__ = ["MIN_STD", "Standardiser", "standardise"]

"""``cosine``: cosine similarity to the context mean and to each context video, raw space."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tiermem.distinctiveness.base import Distinctiveness
from tiermem.distinctiveness.registry import register_distinctiveness


@register_distinctiveness
class CosineDistinctiveness(Distinctiveness):
    """Cosine similarity to the context mean, and mean cosine similarity to each context video.

    Computed in the raw source space: both need a non-centred space (PCA scores average to 0).
    The mean pairwise similarity is exact and cheap: x̂ · mean(ĉ). Leave-one-out removes the
    video from both means. Low similarity = distinctive; the score is 1 - mean similarity.
    """

    name = "cosine"
    _PARAMS = ("source",)

    def __init__(self, source: str = "mid") -> None:
        self.source = source

    @staticmethod
    def _unit(X: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(X, axis=1, keepdims=True)
        return np.divide(X, norm, out=np.zeros_like(X), where=norm > 0)

    def _fit(self, X: np.ndarray) -> np.ndarray:
        n = len(X)
        self.mean_ = X.mean(axis=0)
        U = self._unit(X)
        self.mean_unit_ = U.mean(axis=0)
        means = (n * self.mean_ - X) / (n - 1)
        mean_units = (n * self.mean_unit_ - U) / (n - 1)
        sim_to_mean = np.einsum("ij,ij->i", U, self._unit(means))
        mean_sim = np.einsum("ij,ij->i", U, mean_units)
        return np.column_stack([sim_to_mean, mean_sim])

    def _features(self, X: np.ndarray) -> np.ndarray:
        U = self._unit(X)
        mean_dir = self._unit(self.mean_[None, :])[0]
        return np.column_stack([U @ mean_dir, U @ self.mean_unit_])

    def _score(self, F: np.ndarray) -> np.ndarray:
        return 1.0 - F[:, 1]

    def _names(self) -> list[str]:
        return ["sim_to_mean", "mean_sim"]

    def _state(self) -> dict[str, Any]:
        return {"mean": self.mean_, "mean_unit": self.mean_unit_}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.mean_unit_ = np.asarray(state["mean_unit"], dtype=np.float64)


__all__ = ["CosineDistinctiveness"]

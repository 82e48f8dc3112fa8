"""``knn``: distance to the nearest and mean distance to the k nearest context videos."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tiermem.distinctiveness.base import Distinctiveness
from tiermem.distinctiveness.projection import Projection
from tiermem.distinctiveness.registry import register_distinctiveness


@register_distinctiveness
class KNNDistinctiveness(Distinctiveness):
    """Distance to the nearest and mean distance to the `k` nearest context videos (PCA space).

    Neighbours come from scikit-learn's exact `NearestNeighbors`, rebuilt on load from the stored
    reduced context (deterministic). On the context itself, `kneighbors()` without a query leaves
    each video's own index out (leave-one-out).
    """

    name = "knn"
    _PARAMS = ("source", "k", "n_components", "standardize", "random_state")

    def __init__(
        self,
        source: str = "mid",
        k: int = 10,
        n_components: int = 10,
        standardize: bool = True,
        random_state: int = 0,
    ) -> None:
        self.source = source
        self.k = k
        self.n_components = n_components
        self.standardize = standardize
        self.random_state = random_state

    def _min_context(self) -> int:
        return self.k + 1

    def _index(self) -> Any:
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(n_neighbors=self.k).fit(self.context_)

    def _fit(self, X: np.ndarray) -> np.ndarray:
        self.projection_ = Projection(self.n_components, self.standardize)
        self.context_ = self.projection_.fit_transform(X, self.random_state)
        self.index_ = self._index()
        dist, _ = self.index_.kneighbors()  # no query: each context video's own index left out
        return self._from_distances(dist)

    def _features(self, X: np.ndarray) -> np.ndarray:
        dist, _ = self.index_.kneighbors(self.projection_.transform(X))
        return self._from_distances(dist)

    @staticmethod
    def _from_distances(dist: np.ndarray) -> np.ndarray:
        return np.column_stack([dist[:, 0], dist.mean(axis=1)])

    def _score(self, F: np.ndarray) -> np.ndarray:
        return F[:, 1]

    def _names(self) -> list[str]:
        return ["nn_dist", "mean_dist"]

    def _state(self) -> dict[str, Any]:
        return {"context": self.context_, **self.projection_.state()}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.projection_ = Projection(self.n_components, self.standardize).load(state)
        self.context_ = np.asarray(state["context"], dtype=np.float64)
        self.index_ = self._index()


__all__ = ["KNNDistinctiveness"]

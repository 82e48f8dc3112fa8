"""``kde``: Gaussian kernel log density among the context, in the whitened PCA space."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import logsumexp

from tiermem.distinctiveness.base import Distinctiveness
from tiermem.distinctiveness.projection import Projection
from tiermem.distinctiveness.registry import register_distinctiveness
from tiermem.errors import TiermemError

_CHUNK_ROWS = 1024  # query rows per pairwise-distance chunk: bounds memory at ~8 MB per 1k context


@register_distinctiveness
class KDEDistinctiveness(Distinctiveness):
    """Gaussian kernel log density of each video among the context, in the whitened PCA space.

    Whitening (each PCA axis divided by its standard deviation) makes one isotropic bandwidth fit
    every axis, so Scott's factor n^(-1/(d+4)) or Silverman's (n(d+2)/4)^(-1/(d+4)) applies as in
    scipy's `gaussian_kde`. Computed in numpy in chunks with the context video's own kernel
    removed for leave-one-out (subtracting it from the full density would cancel catastrophically
    for isolated videos). Low density = distinctive.
    """

    name = "kde"
    _PARAMS = ("source", "bandwidth", "n_components", "standardize", "random_state")

    def __init__(
        self,
        source: str = "mid",
        bandwidth: str | float = "scott",
        n_components: int = 10,
        standardize: bool = True,
        random_state: int = 0,
    ) -> None:
        self.source = source
        self.bandwidth = bandwidth
        self.n_components = n_components
        self.standardize = standardize
        self.random_state = random_state

    def _bandwidth(self, n: int, d: int) -> float:
        if self.bandwidth == "scott":
            return float(n ** (-1.0 / (d + 4)))
        if self.bandwidth == "silverman":
            return float((n * (d + 2) / 4.0) ** (-1.0 / (d + 4)))
        try:
            h = float(self.bandwidth)
        except (TypeError, ValueError):
            raise TiermemError(
                f"kde bandwidth must be 'scott', 'silverman' or a positive number, got {self.bandwidth!r}"
            ) from None
        if not h > 0:
            raise TiermemError(f"kde bandwidth must be positive, got {h}")
        return h

    def _fit(self, X: np.ndarray) -> np.ndarray:
        self.projection_ = Projection(self.n_components, self.standardize)
        self.context_ = self.projection_.whiten(self.projection_.fit_transform(X, self.random_state))
        self.bandwidth_ = self._bandwidth(*self.context_.shape)
        return self._log_density(self.context_, leave_one_out=True)[:, None]

    def _features(self, X: np.ndarray) -> np.ndarray:
        W = self.projection_.whiten(self.projection_.transform(X))
        return self._log_density(W, leave_one_out=False)[:, None]

    def _log_density(self, W: np.ndarray, leave_one_out: bool) -> np.ndarray:
        from sklearn.metrics.pairwise import euclidean_distances

        C, h = self.context_, self.bandwidth_
        n_ref, d = C.shape[0] - int(leave_one_out), C.shape[1]
        norm = math.log(n_ref) + 0.5 * d * math.log(2.0 * math.pi * h * h)
        out = np.empty(len(W))
        for start in range(0, len(W), _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, len(W))
            logk = -0.5 * euclidean_distances(W[start:stop], C, squared=True) / (h * h)
            if leave_one_out:
                rows = np.arange(stop - start)
                logk[rows, start + rows] = -np.inf
            out[start:stop] = logsumexp(logk, axis=1) - norm
        return out

    def _score(self, F: np.ndarray) -> np.ndarray:
        return -F[:, 0]

    def _names(self) -> list[str]:
        return ["log_density"]

    def _summary(self) -> dict[str, Any]:
        return {"bandwidth": self.bandwidth_}

    def _state(self) -> dict[str, Any]:
        return {
            "context": self.context_,
            "bandwidth_value": float(self.bandwidth_),
            **self.projection_.state(),
        }

    def _load(self, state: Mapping[str, Any]) -> None:
        self.projection_ = Projection(self.n_components, self.standardize).load(state)
        self.context_ = np.asarray(state["context"], dtype=np.float64)
        self.bandwidth_ = float(state["bandwidth_value"])


__all__ = ["KDEDistinctiveness"]

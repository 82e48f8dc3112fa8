"""The context's reduced space: z-scores (optional) then PCA, fitted on the context.

The ``knn``, ``kde`` and ``dbscan`` methods measure distances in this space; ``kde`` and the
``dbscan`` classifier also whiten it (each PCA axis divided by its standard deviation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tiermem.standardise import Standardiser


class Projection:
    """Standardise (optional) then PCA, fitted on the context; stored as arrays.

    Implemented as a numpy projection from sklearn's fitted PCA arrays so that a loaded state
    gives bit-identical scores (no refit, no solver randomness).
    """

    _PCA_ARRAYS = ("pca_mean_", "components_", "explained_variance_")

    def __init__(self, n_components: int, standardize: bool) -> None:
        self.n_components = n_components
        self.standardize = standardize

    def fit_transform(self, X: np.ndarray, random_state: int) -> np.ndarray:
        from sklearn.decomposition import PCA

        n_features = X.shape[1]
        self.standardiser_ = Standardiser().fit(X) if self.standardize else Standardiser.identity(n_features)
        n = min(self.n_components, X.shape[0], n_features)
        pca = PCA(n_components=n, svd_solver="full", random_state=random_state).fit(
            self.standardiser_.transform(X)
        )
        self.pca_mean_ = pca.mean_.astype(np.float64)
        self.components_ = pca.components_.astype(np.float64)
        var = pca.explained_variance_.astype(np.float64)
        # Constant directions would divide by zero when whitening; give them unit scale.
        self.explained_variance_ = np.where(var > 1e-12, var, 1.0)
        return self.transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (self.standardiser_.transform(X) - self.pca_mean_) @ self.components_.T

    def whiten(self, Z: np.ndarray) -> np.ndarray:
        return Z / np.sqrt(self.explained_variance_)

    def state(self, prefix: str = "proj_") -> dict[str, np.ndarray]:
        """Fitted arrays as ``<prefix>center``, ``<prefix>scale``, ``<prefix>pca_mean``, ..."""
        standardiser = self.standardiser_.state_dict()
        return {
            prefix + "center": standardiser["mean"],
            prefix + "scale": standardiser["scale"],
            **{prefix + name.rstrip("_"): getattr(self, name) for name in self._PCA_ARRAYS},
        }

    def load(self, state: Mapping[str, Any], prefix: str = "proj_") -> "Projection":
        """Restore the arrays written by `state`; returns self."""
        self.standardiser_ = Standardiser.from_state(
            {"mean": state[prefix + "center"], "scale": state[prefix + "scale"]}
        )
        for name in self._PCA_ARRAYS:
            setattr(self, name, np.asarray(state[prefix + name.rstrip("_")], dtype=np.float64))
        return self


__all__ = ["Projection"]

"""The ridge baseline: closed-form ridge regression on standardised features (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tiermem.model.base import Head, state_array, state_number
from tiermem.model.registry import register_head
from tiermem.standardise import Standardiser

# -- ridge ----------------------------------------------------------------------------------


def default_alphas() -> np.ndarray:
    """Log grid 1e-3 .. 1e6: wide enough that 80-1000 standardised features never hit an edge."""
    return np.logspace(-3, 6, 37)


@register_head
class RidgeHead(Head):
    """Closed-form ridge regression on standardised features; alpha by efficient leave-one-out CV.

    The baseline every report shows beside the M3-S head. Predictions are clipped to [0, 1]
    (memorability is a probability), or to the training range of a target learnt through a
    `TargetScaling`; clipping never changes the order of in-range scores.
    """

    name = "ridge"

    def __init__(self, alphas: Sequence[float] | None = None, clip: bool = True) -> None:
        self.alphas = None if alphas is None else [float(a) for a in alphas]
        self.clip = clip

    def get_params(self) -> dict[str, Any]:
        return {"alphas": self.alphas, "clip": self.clip}

    def fit(self, X, y, X_val=None, y_val=None, *, layout=None, progress=None, watch=None) -> "RidgeHead":
        """Fit on (X, y); validation data is not needed (alpha comes from LOO-CV on X)."""
        from sklearn.linear_model import RidgeCV

        X, y = self._check_fit_inputs(X, y, layout)
        self.normaliser_ = Standardiser().fit(X)
        alphas = np.asarray(self.alphas if self.alphas is not None else default_alphas())
        model = RidgeCV(alphas=alphas).fit(self._standardised(X), y)
        self.coef_ = np.asarray(model.coef_, dtype=np.float64)
        self.intercept_ = float(model.intercept_)
        self.alpha_ = float(model.alpha_)
        return self

    def _standardised(self, X: np.ndarray) -> np.ndarray:
        # Rounded through float32, as tiermem's heads have always standardised, so ridge heads
        # saved by earlier versions keep their exact scores.
        return self.normaliser_.transform(X).astype(np.float32).astype(np.float64)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        out = self._standardised(X) @ self.coef_ + self.intercept_
        return np.clip(out, 0.0, 1.0) if self.clip else out

    def state_dict(self) -> dict[str, Any]:
        return {
            "normaliser.mean": self.normaliser_.mean_,
            "normaliser.scale": self.normaliser_.scale_,
            "ridge.coef": self.coef_,
            "ridge.intercept": self.intercept_,
            "ridge.alpha": self.alpha_,
            **self._common_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> "RidgeHead":
        self._load_common(state)
        self.normaliser_ = self._load_normaliser(state)
        self.coef_ = state_array(state, "ridge.coef", (self.n_features_in_,))
        self.intercept_ = state_number(state, "ridge.intercept")
        self.alpha_ = state_number(state, "ridge.alpha")
        return self


__all__ = ["RidgeHead", "default_alphas"]

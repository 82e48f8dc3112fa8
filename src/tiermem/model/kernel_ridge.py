"""Kernel ridge: ridge regression in the feature space of an RBF kernel, on balanced blocks.

A memorability score is rarely linear in sentence embeddings or class probabilities: videos
whose captions say nearly the same thing score alike, whatever direction they differ in. RBF
kernel ridge fits that without an MLP's epochs and seeds. On the realbench validation splits it
led the linear ridge on captions and on titles + COCO-80, and averaged with M3-S it gave the
best figure on both (`benchmarks/text_models.py`).

Each column is standardised with the training statistics, then each block is divided by the
square root of its width, so every block has unit total variance and weighs the same in the
distance whatever its width (a 384-d caption embedding beside 80 class scores). The kernel is
``exp(-gamma / n_blocks * |a - b|^2)``. `gamma` and the ridge strength `alpha` are chosen
together on an inner split of the training videos by the Spearman correlation of its held-out
scores (one Cholesky solve per pair), then the model is fitted on every
training video. The fitted head keeps its training rows (the kernel's support), so a file
weighs about ``4 * videos * features`` bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.model.base import Head, StateError, state_array, state_number
from tiermem.model.registry import register_head
from tiermem.splits import split_train_val
from tiermem.standardise import Standardiser

#: Relative kernel widths tried: multiples of 1 / n_blocks in the exponent.
GAMMAS = (0.125, 0.25, 0.5, 1.0, 2.0)
#: Ridge strengths tried.
ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
#: Above this many training videos the kernel matrix (8 n^2 bytes) is refused: 12000 -> 1.2 GB.
MAX_ROWS = 12000
#: Rows scored per kernel block at prediction time (bounds memory to 8 * CHUNK * support bytes).
CHUNK = 1024


def squared_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """|a - b|^2 for every row of A against every row of B, never negative."""
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    return np.maximum(d, 0.0)


@register_head
class KernelRidgeHead(Head):
    """RBF kernel ridge on standardised, block-balanced features; `gamma` and `alpha` chosen
    from `gammas` x `alphas` on an inner `inner` split (seed `seed`) of the training videos."""

    name = "kernel-ridge"

    def __init__(
        self,
        gammas: Sequence[float] | None = None,
        alphas: Sequence[float] | None = None,
        inner: float = 0.2,
        seed: int = 1,
        clip: bool = True,
    ) -> None:
        self.gammas = None if gammas is None else [float(g) for g in gammas]
        self.alphas = None if alphas is None else [float(a) for a in alphas]
        self.inner = float(inner)
        self.seed = int(seed)
        self.clip = bool(clip)

    def get_params(self) -> dict[str, Any]:
        return {
            "gammas": self.gammas,
            "alphas": self.alphas,
            "inner": self.inner,
            "seed": self.seed,
            "clip": self.clip,
        }

    def check_params(self) -> None:
        for name, grid in (("gammas", self.gammas), ("alphas", self.alphas)):
            if grid is not None and (not grid or min(grid) <= 0 or not np.isfinite(grid).all()):
                raise TiermemError(f"kernel-ridge head: {name} must be positive numbers, got {grid}")
        if not 0.0 < self.inner < 1.0:
            raise TiermemError(f"kernel-ridge head: inner must be in (0, 1), got {self.inner}")

    def fit(
        self, X, y, X_val=None, y_val=None, *, layout=None, progress=None, watch=None
    ) -> "KernelRidgeHead":
        """Choose gamma and alpha on the inner split of (X, y), then fit on all of it."""
        X, y = self._check_fit_inputs(X, y, layout)
        if len(y) > MAX_ROWS:
            raise DataMismatchError(
                f"kernel-ridge head: {len(y)} training videos need a {8 * len(y) ** 2 / 1e9:.1f} GB kernel "
                f"matrix; it takes at most {MAX_ROWS} (use the ridge or m3s head)"
            )
        self.normaliser_ = Standardiser().fit(X)
        # Through float32, the precision the support is saved in, so a loaded head scores the same.
        Z = self._balanced(X).astype(np.float32).astype(np.float64)
        gammas = np.asarray(self.gammas or GAMMAS) / len(self.layout_)
        alphas = np.asarray(self.alphas or ALPHAS)
        self.grid_spearman_ = self._grid(Z, y, gammas, alphas)
        best = max(self.grid_spearman_, key=self.grid_spearman_.get)
        self.gamma_, self.alpha_ = gammas[best[0]], alphas[best[1]]
        self.intercept_ = float(y.mean())
        K = np.exp(-self.gamma_ * squared_distances(Z, Z))
        K[np.diag_indices_from(K)] += self.alpha_
        from scipy.linalg import solve

        self.coef_ = solve(K, y - self.intercept_, assume_a="pos", overwrite_a=True)
        self.support_ = Z.astype(np.float32)
        return self

    def _grid(
        self, Z: np.ndarray, y: np.ndarray, gammas: np.ndarray, alphas: np.ndarray
    ) -> dict[tuple[int, int], float]:
        """Spearman of the inner split's held-out scores for each (gamma, alpha) index pair."""
        from scipy.linalg import solve
        from scipy.stats import spearmanr

        fold = self.inner if len(y) * self.inner >= 3 else 3 / len(y)
        train, held = split_train_val(len(y), fold, self.seed)
        if train.size < 3:
            return {(len(gammas) // 2, len(alphas) // 2): 0.0}  # too few to choose: the grid's middle
        d_train = squared_distances(Z[train], Z[train])
        d_held = squared_distances(Z[held], Z[train])
        centred = y[train] - y[train].mean()
        scores: dict[tuple[int, int], float] = {}
        for gi, gamma in enumerate(gammas):
            K_train, K_held = np.exp(-gamma * d_train), np.exp(-gamma * d_held)
            for ai, alpha in enumerate(alphas):
                K_train[np.diag_indices_from(K_train)] += alpha
                coef = solve(K_train, centred, assume_a="pos")
                K_train[np.diag_indices_from(K_train)] -= alpha
                rho = spearmanr(K_held @ coef, y[held]).statistic
                scores[(gi, ai)] = float(rho) if np.isfinite(rho) else -1.0
        return scores

    def _balanced(self, X: np.ndarray) -> np.ndarray:
        """Standardised columns, each block divided by the square root of its width."""
        Z = self.normaliser_.transform(X)
        widths = np.concatenate([np.full(len(b.feature_names), len(b.feature_names)) for b in self.layout_])
        return Z / np.sqrt(widths)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        Z = self._balanced(X)
        support = self.support_.astype(np.float64)
        out = np.concatenate(
            [
                np.exp(-self.gamma_ * squared_distances(Z[i : i + CHUNK], support)) @ self.coef_
                for i in range(0, len(Z), CHUNK)
            ]
        )
        out += self.intercept_
        return np.clip(out, 0.0, 1.0) if self.clip else out

    def state_dict(self) -> dict[str, Any]:
        return {
            "normaliser.mean": self.normaliser_.mean_,
            "normaliser.scale": self.normaliser_.scale_,
            "kernel.support": self.support_,
            "kernel.coef": self.coef_,
            "kernel.intercept": self.intercept_,
            "kernel.gamma": float(self.gamma_),
            "kernel.alpha": float(self.alpha_),
            **self._common_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> "KernelRidgeHead":
        self._load_common(state)
        self.normaliser_ = self._load_normaliser(state)
        rows = np.asarray(state["kernel.support"]).shape[0]
        self.support_ = state_array(state, "kernel.support", (rows, self.n_features_in_)).astype(np.float32)
        self.coef_ = state_array(state, "kernel.coef", (rows,))
        self.intercept_ = state_number(state, "kernel.intercept")
        self.gamma_ = state_number(state, "kernel.gamma")
        self.alpha_ = state_number(state, "kernel.alpha")
        if self.gamma_ <= 0:
            raise StateError("kernel.gamma", f"must be positive, got {self.gamma_}")
        return self


__all__ = ["KernelRidgeHead", "squared_distances"]

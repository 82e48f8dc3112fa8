"""Exact Shapley values over tiers: how much each tier moved one video's score.

A tier is "present" with the video's own features and "absent" with a baseline (its training
mean). With n tiers (n <= 6 in tiermem, 64 coalitions) the exact Shapley value is cheap, so we
never sample permutations: every coalition of every video is built as one masked copy of the
concatenated feature vector, the head scores them in a few large batches, and a fixed
(2^n x n) weight matrix turns the coalition scores into contributions. By construction they sum
to score - baseline score (efficiency), identical tiers get equal values (symmetry), and a tier
the model ignores gets 0 (dummy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np

from tiermem.errors import DataMismatchError

TierColumns = slice | Sequence[int] | np.ndarray


@dataclass
class TierShapley:
    """Per-video, per-tier contributions.

    `values[i, j]` is tier `tier_names[j]`'s contribution to video i's score; each row sums to
    `scores[i] - base_score` up to float rounding. `base_score` is the model's score with every
    tier absent (all baselines).
    """

    tier_names: list[str]
    values: np.ndarray  # (N, n_tiers)
    scores: np.ndarray  # (N,) f(x)
    base_score: float  # f(baseline)

    def as_dicts(self) -> list[dict[str, float]]:
        """One {tier: contribution} dict per video, for JSON output and reports."""
        return [dict(zip(self.tier_names, map(float, row))) for row in self.values]


def coalition_masks(n: int) -> np.ndarray:
    """(2^n, n) bool: row s has tier j present iff bit j of s is set."""
    s = np.arange(2**n)[:, None]
    return ((s >> np.arange(n)[None, :]) & 1).astype(bool)


def shapley_weights(n: int) -> np.ndarray:
    """(2^n, n) matrix W with phi = v @ W for coalition values v (2^n,).

    phi_j = sum over S not containing j of |S|!(n-|S|-1)!/n! * (v(S + j) - v(S)); rearranged per
    coalition S: +w(|S|-1) for j in S, -w(|S|) for j not in S, with w(s) = s!(n-s-1)!/n!.
    """
    masks = coalition_masks(n)
    size = masks.sum(axis=1)
    w = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)])
    W = np.zeros((2**n, n))
    W[masks] = np.broadcast_to(w[np.clip(size - 1, 0, n - 1)][:, None], masks.shape)[masks]
    W[~masks] = -np.broadcast_to(w[np.clip(size, 0, n - 1)][:, None], masks.shape)[~masks]
    return W


def _column_masks(tiers: Sequence[TierColumns], n_features: int, names: Sequence[str]) -> np.ndarray:
    """(n_tiers, D) bool column ownership; every column must belong to exactly one tier."""
    owner = np.zeros((len(tiers), n_features), dtype=bool)
    for j, cols in enumerate(tiers):
        try:
            owner[j, cols] = True
        except IndexError:
            raise DataMismatchError(
                f"tier {names[j]!r}: columns {cols} fall outside the {n_features} features"
            ) from None
    count = owner.sum(axis=0)
    if (count > 1).any():
        raise DataMismatchError(f"column {int(np.argmax(count > 1))} belongs to more than one tier")
    if (count == 0).any():
        raise DataMismatchError(
            f"column {int(np.argmax(count == 0))} belongs to no tier ({int((count == 0).sum())} "
            "uncovered); every feature must belong to exactly one tier"
        )
    return owner


def tier_shapley(
    predict: Callable[[np.ndarray], Any],
    X: Any,
    tiers: Mapping[str, TierColumns],
    baseline: Any,
    max_rows: int = 65536,
    max_tiers: int = 10,
) -> TierShapley:
    """Exact Shapley values of each tier for each video's score.

    predict  -- scores a batch of concatenated feature vectors (M, D) -> (M,) or (M, 1).
    X        -- (N, D) videos to explain.
    tiers    -- tier name -> its columns in X (a slice or indices); together they cover X once.
    baseline -- (D,) the value of every column when its tier is absent (the training mean).
    max_rows -- rows per `predict` call: videos are chunked so each call holds <= this many
                masked copies (at least one video's 2^n).

    Cost: 2^n model evaluations per video (the empty and full coalitions included), batched.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    names = list(tiers)
    n = len(names)
    if not 1 <= n <= max_tiers:
        raise ValueError(f"exact Shapley needs 1..{max_tiers} tiers (2^n evaluations), got {n}")
    baseline = np.asarray(baseline, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or baseline.shape[0] != X.shape[1]:
        raise DataMismatchError(
            f"baseline has {baseline.shape[0]} features but the videos have {X.shape[-1]}"
        )
    owner = _column_masks([tiers[k] for k in names], X.shape[1], names)
    present = coalition_masks(n) @ owner.astype(np.int64) > 0  # (2^n, D): column kept?
    weights = shapley_weights(n)
    n_coalitions = 2**n

    def run(batch: np.ndarray) -> np.ndarray:
        out = np.asarray(predict(batch), dtype=np.float64)
        if out.size != len(batch):
            raise DataMismatchError(
                f"predict returned {out.size} values for {len(batch)} rows; expected one score per row"
            )
        return out.reshape(-1)

    values = np.empty((len(X), n))
    scores = np.empty(len(X))
    base_score = float(run(baseline[None, :])[0]) if len(X) == 0 else 0.0
    per_call = max(1, max_rows // n_coalitions)
    for start in range(0, len(X), per_call):
        chunk = X[start : start + per_call]
        masked = np.where(present[None, :, :], chunk[:, None, :], baseline[None, None, :])
        v = run(masked.reshape(-1, X.shape[1])).reshape(len(chunk), n_coalitions)
        values[start : start + len(chunk)] = v @ weights
        scores[start : start + len(chunk)] = v[:, -1]  # all tiers present = f(x)
        if start == 0:
            base_score = float(v[0, 0])  # no tier present = f(baseline), from the same batch
    return TierShapley(tier_names=names, values=values, scores=scores, base_score=base_score)


__all__ = ["TierShapley", "coalition_masks", "shapley_weights", "tier_shapley"]

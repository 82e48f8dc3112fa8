"""Exact tier Shapley values against a brute-force permutation reference and the axioms."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest

from tiermem.errors import DataMismatchError
from tiermem.explain import coalition_masks, shapley_weights, tier_shapley


def permutation_shapley(predict, x, tiers, baseline):
    """Reference: average marginal contribution over all n! orders of adding tiers."""
    names = list(tiers)
    phi = dict.fromkeys(names, 0.0)
    orders = list(permutations(names))
    for order in orders:
        z = baseline.copy()
        prev = float(np.ravel(predict(z[None]))[0])
        for name in order:
            z[tiers[name]] = x[tiers[name]]
            cur = float(np.ravel(predict(z[None]))[0])
            phi[name] += cur - prev
            prev = cur
    return np.array([phi[k] / len(orders) for k in names])


def random_mlp(d: int, seed: int):
    """A fixed random 2-layer tanh MLP with a sigmoid: nonlinear, with tier interactions."""
    rng = np.random.default_rng(seed)
    W1, b1 = rng.normal(0, 0.7, (d, 16)), rng.normal(0, 0.3, 16)
    W2, b2 = rng.normal(0, 0.7, (16, 1)), rng.normal()

    def predict(Z):
        return 1 / (1 + np.exp(-(np.tanh(Z @ W1 + b1) @ W2 + b2)))

    return predict


TIERS = {"low": slice(0, 3), "mid": [3, 4, 5, 6], "high": slice(7, 9), "text": [9]}


def test_weights_sum_rule():
    # Efficiency is built into W: columns' sum over tiers is +1 on the full set, -1 on the empty.
    for n in range(1, 7):
        total = shapley_weights(n).sum(axis=1)
        expected = np.zeros(2**n)
        expected[-1], expected[0] = 1.0, -1.0
        np.testing.assert_allclose(total, expected, atol=1e-12)
    assert coalition_masks(3)[5].tolist() == [True, False, True]


def test_matches_permutation_reference_on_mlp():
    rng = np.random.default_rng(1)
    predict = random_mlp(10, seed=2)
    X = rng.normal(size=(7, 10))
    baseline = rng.normal(size=10)
    res = tier_shapley(predict, X, TIERS, baseline)
    assert res.values.shape == (7, 4) and res.tier_names == list(TIERS)
    for i in range(len(X)):
        np.testing.assert_allclose(
            res.values[i], permutation_shapley(predict, X[i], TIERS, baseline), atol=1e-12
        )
    # Additivity: contributions sum to f(x) - f(baseline).
    np.testing.assert_allclose(res.scores, predict(X).ravel(), atol=1e-15)
    assert res.base_score == pytest.approx(float(np.ravel(predict(baseline[None]))[0]), abs=1e-15)
    np.testing.assert_allclose(res.values.sum(axis=1), res.scores - res.base_score, atol=1e-12)
    # The MLP has interactions, so the values are not just per-tier one-at-a-time effects.
    assert np.abs(res.values).min() > 0


def test_linear_model_gives_weighted_deviation_per_tier():
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=10), 0.4
    X = rng.normal(size=(20, 10))
    mean = X.mean(axis=0)
    res = tier_shapley(lambda Z: Z @ w + b, X, TIERS, mean)
    for j, cols in enumerate(TIERS.values()):
        idx = np.arange(10)[cols]
        np.testing.assert_allclose(res.values[:, j], (X[:, idx] - mean[idx]) @ w[idx], atol=1e-12)


def test_symmetry_and_dummy():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5, 6))
    baseline = np.zeros(6)

    # Tiers a and b enter symmetrically (same weights on equal values); tier c is ignored.
    def predict(Z):
        return np.tanh(Z[:, 0] + Z[:, 1]) * np.tanh(Z[:, 2] + Z[:, 3])

    Xs = X.copy()
    Xs[:, 2:4] = Xs[:, 0:2]
    tiers = {"a": slice(0, 2), "b": slice(2, 4), "c": slice(4, 6)}
    res = tier_shapley(predict, Xs, tiers, baseline)
    np.testing.assert_allclose(res.values[:, 0], res.values[:, 1], atol=1e-14)
    np.testing.assert_allclose(res.values[:, 2], 0.0, atol=1e-15)
    assert np.abs(res.values[:, 0]).max() > 1e-3


def test_chunking_gives_identical_values_and_calls_predict_in_batches():
    rng = np.random.default_rng(5)
    predict = random_mlp(10, seed=6)
    X = rng.normal(size=(33, 10))
    calls: list[int] = []

    def counted(Z):
        calls.append(len(Z))
        return predict(Z)

    full = tier_shapley(predict, X, TIERS, np.zeros(10))
    small = tier_shapley(counted, X, TIERS, np.zeros(10), max_rows=16 * 5)
    np.testing.assert_allclose(small.values, full.values, atol=1e-14)
    # 16 coalitions x 5 videos per call, 33 videos -> 7 calls; every row is one coalition.
    assert calls == [80] * 6 + [48]
    assert small.as_dicts()[0].keys() == set(TIERS)


def test_bad_inputs():
    X = np.zeros((2, 10))
    f = lambda Z: Z.sum(axis=1)  # noqa: E731
    with pytest.raises(DataMismatchError, match="belongs to no tier"):
        tier_shapley(f, X, {"a": slice(0, 9)}, np.zeros(10))
    with pytest.raises(DataMismatchError, match="more than one tier"):
        tier_shapley(f, X, {"a": slice(0, 6), "b": slice(5, 10)}, np.zeros(10))
    with pytest.raises(DataMismatchError, match="baseline has 9 features"):
        tier_shapley(f, X, TIERS, np.zeros(9))
    with pytest.raises(DataMismatchError, match="one score per row"):
        tier_shapley(lambda Z: Z, X, TIERS, np.zeros(10))

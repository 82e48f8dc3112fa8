"""Soft ranks by permutahedron projection (Blondel et al. 2020), against a direct numpy
implementation of the same definition, at its limits, and through the Spearman loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from tiermem.model.losses import get_loss, soft_spearman
from tiermem.model.soft_rank import soft_rank


def projection(theta: np.ndarray, strength: float) -> np.ndarray:
    """Projection of theta/strength onto the permutahedron of (n, ..., 1), written directly: a
    decreasing isotonic regression of the sorted values minus w (Blondel et al., Prop. 3), here
    solved by scikit-learn's isotonic regression rather than our PAV."""
    from sklearn.isotonic import IsotonicRegression

    z = theta / strength
    n = len(z)
    order = np.argsort(-z, kind="stable")
    v = IsotonicRegression(increasing=False).fit_transform(np.arange(n), z[order] - np.arange(n, 0, -1))
    out = np.empty(n)
    out[order] = z[order] - v
    return out


X = np.array(
    [[0.81, 0.12, 0.55, 0.30, 0.27, 0.95, 0.60, 0.58, 0.05], [3.0, -1.0, 0.5, 0.5, 2.0, -0.2, 1.1, 0.9, 0.0]]
)


@pytest.mark.parametrize("strength", [0.01, 0.1, 0.5, 1.0, 5.0])
def test_equals_the_direct_projection_row_by_row(strength: float) -> None:
    got = soft_rank(torch.tensor(X), strength).numpy()
    np.testing.assert_allclose(got, np.stack([projection(x, strength) for x in X]), atol=1e-12)
    assert np.allclose(got.sum(axis=1), X.shape[1] * (X.shape[1] + 1) / 2)  # ranks always sum to n(n+1)/2


def test_a_batch_of_rows_with_different_blocks_at_once() -> None:
    """Rows pool differently (ties, runs, one block); solved together they equal each row alone."""
    rng = np.random.default_rng(3)
    batch = np.concatenate(
        [rng.normal(size=(40, 33)), np.round(rng.uniform(size=(8, 33)), 1), np.sort(rng.normal(size=(2, 33)))]
    )
    for strength in (0.05, 1.0, 20.0):
        got = soft_rank(torch.tensor(batch.reshape(5, 10, 33)), strength).numpy().reshape(50, 33)
        np.testing.assert_allclose(got, np.stack([projection(x, strength) for x in batch]), atol=1e-10)


def test_limits_hard_ranks_and_an_affine_map() -> None:
    np.testing.assert_allclose(soft_rank(torch.tensor(X[:1]), 1e-4).numpy()[0], rankdata(X[0]))
    big = 1e3  # every entry pools into one block: theta/eps - mean + (n + 1) / 2
    expected = X / big - (X / big).mean(axis=1, keepdims=True) + (X.shape[1] + 1) / 2
    np.testing.assert_allclose(soft_rank(torch.tensor(X), big).numpy(), expected, atol=1e-12)
    # On scores in [0, 1] at strength 1 (the reference's setting) it is already affine.
    np.testing.assert_allclose(
        np.corrcoef(soft_rank(torch.tensor(X[0]), 1.0).numpy(), X[0])[0, 1], 1.0, atol=1e-12
    )


def test_gradient_matches_finite_differences() -> None:
    theta = torch.tensor(X[1] / 4, requires_grad=True)
    weights = torch.linspace(-1, 1, len(theta), dtype=torch.float64)
    (soft_rank(theta, 0.3) * weights).sum().backward()
    numeric = np.empty(len(theta))
    for i in range(len(theta)):
        step = np.zeros(len(theta))
        step[i] = 1e-6
        up = soft_rank(torch.tensor(X[1] / 4 + step), 0.3) @ weights
        down = soft_rank(torch.tensor(X[1] / 4 - step), 0.3) @ weights
        numeric[i] = float(up - down) / 2e-6
    np.testing.assert_allclose(theta.grad.numpy(), numeric, atol=1e-6)


def test_the_spearman_loss_takes_either_rank() -> None:
    pred = torch.tensor([0.2, 0.5, 0.9, 0.4], dtype=torch.float64)
    target = torch.tensor([0.1, 0.7, 0.8, 0.3], dtype=torch.float64)
    exact = float(np.corrcoef(rankdata(pred), rankdata(target))[0, 1])
    assert float(soft_spearman(pred, target, rank="permutahedron", strength=1e-3)) == pytest.approx(
        exact, abs=1e-9
    )
    assert float(get_loss("spearman", rank="permutahedron", strength=1e-3)(pred, target)) == pytest.approx(
        1 - exact, abs=1e-9
    )
    with pytest.raises(ValueError, match="rank must be one of sigmoid, permutahedron"):
        soft_spearman(pred, target, rank="pairwise")
    with pytest.raises(ValueError, match="strength must be > 0"):
        soft_rank(pred, 0.0)

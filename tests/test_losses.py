"""Losses against hand-computed values; the soft Spearman against scipy as temperature -> 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import rankdata, spearmanr

from tiermem.errors import TiermemError
from tiermem.model.losses import (
    get_loss,
    hard_rank,
    l1,
    mse,
    mse_tails,
    mse_to_spearman,
    sigmoid_rank,
    soft_spearman,
    spearman,
    tail_weights,
)

PRED = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
TARGET = torch.tensor([0.1, 0.7, 0.4], dtype=torch.float64)


def test_mse_and_l1_by_hand() -> None:
    # errors 0.1, -0.2, 0.5
    assert float(mse(PRED, TARGET)) == pytest.approx((0.01 + 0.04 + 0.25) / 3)
    assert float(l1(PRED, TARGET)) == pytest.approx((0.1 + 0.2 + 0.5) / 3)


def test_tail_weights_by_hand() -> None:
    target = torch.tensor([0.2, 0.4, 0.9], dtype=torch.float64)  # mean 0.5, |d| = .3 .1 .4
    w = tail_weights(target, c=5.0, p=1.0)  # 1 + 5|d| = 2.5 1.5 3.0, mean 7/3
    np.testing.assert_allclose(w.numpy(), np.array([2.5, 1.5, 3.0]) * 3 / 7)
    assert float(w.mean()) == pytest.approx(1.0)
    w2 = tail_weights(target, c=10.0, p=2.0)  # 1 + 10 d^2 = 1.9 1.1 2.6, mean 5.6/3
    np.testing.assert_allclose(w2.numpy(), np.array([1.9, 1.1, 2.6]) * 3 / 5.6)


def test_mse_tails_weights_the_extremes() -> None:
    target = torch.tensor([0.2, 0.4, 0.9], dtype=torch.float64)
    pred = torch.tensor([0.3, 0.3, 0.8], dtype=torch.float64)  # squared errors all 0.01
    w = np.array([2.5, 1.5, 3.0]) * 3 / 7
    assert float(mse_tails(pred, target, c=5.0, p=1.0)) == pytest.approx(np.mean(w * 0.01))
    # c = 0 is plain MSE
    assert float(mse_tails(PRED, TARGET, c=0.0)) == pytest.approx(float(mse(PRED, TARGET)))


def test_hard_rank_matches_scipy_with_ties() -> None:
    x = torch.tensor([0.3, 0.1, 0.3, 0.7, 0.1, 0.5])
    np.testing.assert_allclose(hard_rank(x).numpy(), rankdata(x.numpy()))


def test_sigmoid_rank_tends_to_exact_ranks() -> None:
    x = torch.tensor([0.31, 0.12, 0.55, 0.97, 0.40])
    exact = rankdata(x.numpy())
    errs = [np.abs(sigmoid_rank(x, t).numpy() - exact).max() for t in (1.0, 0.1, 0.01, 0.001)]
    assert errs == sorted(errs, reverse=True)  # monotone in the temperature
    assert errs[0] > 0.3  # a warm temperature really is soft
    assert errs[-1] < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_spearman_tends_to_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(64)
    p = 0.6 * y + 0.4 * rng.random(64)  # correlated, untied
    ref = spearmanr(y, p).statistic
    # Coldest temperature: the smallest gap between predictions is 40 temperature units, so
    # each pairwise sigmoid is within exp(-40) of a step and the soft ranks are exact.
    coldest = np.diff(np.sort(p)).min() / (40 * p.std(ddof=1))
    temps = (0.3, 0.03, 0.003, coldest)
    gaps = [abs(float(soft_spearman(torch.tensor(p), torch.tensor(y), t)) - ref) for t in temps]
    assert gaps[0] > 1e-3
    assert gaps[-1] < 1e-9
    assert gaps == sorted(gaps, reverse=True)


def test_spearman_loss_values_and_gradient() -> None:
    y = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5], dtype=torch.float64)
    assert float(spearman(y.clone(), y, temperature=1e-4)) == pytest.approx(0.0, abs=1e-6)
    assert float(spearman(-y, y, temperature=1e-4)) == pytest.approx(2.0, abs=1e-6)
    # A gradient step on the soft loss improves the exact Spearman of a bad ranking.
    p = torch.tensor([0.5, 0.1, 0.4, 0.2, 0.3], dtype=torch.float64, requires_grad=True)
    before = spearmanr(y.numpy(), p.detach().numpy()).statistic
    spearman(p, y, temperature=0.5).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    after = spearmanr(y.numpy(), (p - 0.5 * p.grad).detach().numpy()).statistic
    assert after > before


def test_mse_to_spearman_schedule() -> None:
    t = 0.01
    n = 5
    assert float(mse_to_spearman(PRED, TARGET, epoch=0, n_epochs=n, temperature=t)) == pytest.approx(
        float(mse(PRED, TARGET))
    )
    s = float(spearman(PRED, TARGET, temperature=t))
    assert float(mse_to_spearman(PRED, TARGET, epoch=n - 1, n_epochs=n, temperature=t)) == pytest.approx(s)
    # epoch 1 of 5: alpha = 1/4
    assert float(mse_to_spearman(PRED, TARGET, epoch=1, n_epochs=n, temperature=t)) == pytest.approx(
        0.75 * float(mse(PRED, TARGET)) + 0.25 * s
    )


def test_get_loss_binds_parameters_and_refuses_unknown() -> None:
    loss = get_loss("mse_tails", c=0.0)
    assert float(loss(PRED, TARGET)) == pytest.approx(float(mse(PRED, TARGET)))
    with pytest.raises(TiermemError, match="unknown loss 'huber'"):
        get_loss("huber")


def test_spearman_loss_has_finite_gradients_when_every_target_is_tied() -> None:
    # TRECVid's coarse scores give batches with one distinct target; sqrt(0) once gave NaN.
    pred = torch.tensor([0.2, 0.9, 0.5], requires_grad=True)
    loss = spearman(pred, torch.tensor([0.75, 0.75, 0.75]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()

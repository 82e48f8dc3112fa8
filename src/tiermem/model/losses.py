"""Training losses for the memorability head, including a differentiable Spearman.

Every loss has one signature, ``loss(pred, target, *, epoch=0, n_epochs=1) -> scalar``, so the
training loop can schedule any of them (``mse_to_spearman`` is the only one that reads the
epoch). ``torchsort`` does not build on our machines, so soft ranks are written in torch,
two ways (the Spearman losses' ``rank`` option):

- ``"sigmoid"`` (default): the pairwise-sigmoid relaxation
  ``rank_i = 1 + sum_{j != i} sigmoid((x_i - x_j) / tau)``, which tends to the exact ranks of
  untied values as ``tau -> 0``; O(B^2) per batch, negligible for the paper's batch of 32;
- ``"permutahedron"``: `soft_rank`, the l2 permutahedron projection torchsort computes
  (Blondel et al. 2020; `tiermem.model.soft_rank`), with its regularisation ``strength``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Protocol

import torch

from tiermem.errors import TiermemError
from tiermem.model.soft_rank import soft_rank
from tiermem.registry import Registry


class Loss(Protocol):
    def __call__(
        self, pred: torch.Tensor, target: torch.Tensor, *, epoch: int = 0, n_epochs: int = 1
    ) -> torch.Tensor: ...


_LOSSES: Registry[Loss] = Registry("loss")
#: Decorator: register a loss under its function name (``@register_loss def mse(...)``).
register_loss = _LOSSES.decorator(lambda fn: fn.__name__)


@register_loss
def mse(pred: torch.Tensor, target: torch.Tensor, *, epoch: int = 0, n_epochs: int = 1) -> torch.Tensor:
    """Mean squared error."""
    return torch.mean((pred - target) ** 2)


@register_loss
def l1(pred: torch.Tensor, target: torch.Tensor, *, epoch: int = 0, n_epochs: int = 1) -> torch.Tensor:
    """Mean absolute error: less pulled by the noisy extreme scores than MSE."""
    return torch.mean(torch.abs(pred - target))


def tail_weights(
    target: torch.Tensor, c: float = 5.0, p: float = 1.0, centre: float | None = None
) -> torch.Tensor:
    """Weights ``1 + c·|m − centre|^p`` normalised to mean 1 (``m`` = target scores; `centre`
    None: the batch mean).

    The paper's Memento10k loss: videos far from the centre (very memorable or very
    forgettable) get more weight, so the head does not regress everything to the mean. The
    reference code uses c = 2, p = 4 and the fixed Memento10k mean 0.80099205, which keeps every
    weight within about 1.00-1.05; tiermem's default (c = 5, p = 1, batch mean) reaches ~2.5.
    """
    middle = target.mean() if centre is None else centre
    w = 1.0 + c * torch.abs(target - middle) ** p
    return w / w.mean()


@register_loss
def mse_tails(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    epoch: int = 0,
    n_epochs: int = 1,
    c: float = 5.0,
    p: float = 1.0,
    centre: float | None = None,
) -> torch.Tensor:
    """MSE weighted by `tail_weights` of the targets."""
    return torch.mean(tail_weights(target, c, p, centre) * (pred - target) ** 2)


def sigmoid_rank(x: torch.Tensor, temperature: float = 0.01) -> torch.Tensor:
    """Differentiable ranks (1-based) of a 1-D tensor by the pairwise-sigmoid relaxation.

    Differences are divided by ``temperature · std(x)`` so that the temperature means the same
    thing whatever the scale of the predictions (sigmoid outputs often span only ~0.1).
    """
    scale = temperature * (x.detach().std() + 1e-12)
    diff = (x.unsqueeze(1) - x.unsqueeze(0)) / scale  # diff[i, j] = x_i - x_j
    # sigmoid(0) = 0.5 on the diagonal, so 0.5 + row sum = 1 + sum over j != i.
    return 0.5 + torch.sigmoid(diff).sum(dim=1)


def hard_rank(x: torch.Tensor) -> torch.Tensor:
    """Exact 1-based ranks with ties averaged (as scipy.stats.rankdata), no gradient."""
    x = x.detach()
    less = (x.unsqueeze(0) < x.unsqueeze(1)).sum(dim=1)
    equal = (x.unsqueeze(0) == x.unsqueeze(1)).sum(dim=1)
    return less.to(x.dtype) + (equal.to(x.dtype) + 1.0) / 2.0


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean()
    b = b - b.mean()
    # eps inside the sqrt: a batch whose targets are all tied has (b*b).sum() == 0, and
    # sqrt's gradient at 0 is inf (inf * 0 = NaN weights); outside it would not help.
    return (a * b).sum() / torch.sqrt((a * a).sum() * (b * b).sum() + 1e-12)


RANKS = ("sigmoid", "permutahedron")
#: How the targets are ranked: exactly (tiermem), or by the same soft rank as the predictions
#: (the reference code soft-ranks both).
TARGET_RANKS = ("hard", "soft")


def soft_spearman(
    pred: torch.Tensor,
    target: torch.Tensor,
    temperature: float = 0.01,
    rank: str = "sigmoid",
    strength: float = 1.0,
    target_rank: str = "hard",
) -> torch.Tensor:
    """Spearman correlation with soft ranks of `pred` (`rank`: sigmoid with `temperature`, or
    permutahedron with `strength`) and exact ranks of `target` (``target_rank="soft"``: the
    same soft rank as `pred`)."""
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {', '.join(RANKS)}, got {rank!r}")
    if target_rank not in TARGET_RANKS:
        raise ValueError(f"target_rank must be one of {', '.join(TARGET_RANKS)}, got {target_rank!r}")

    def ranks(x: torch.Tensor) -> torch.Tensor:
        return sigmoid_rank(x, temperature) if rank == "sigmoid" else soft_rank(x, strength)

    return _pearson(ranks(pred), hard_rank(target) if target_rank == "hard" else ranks(target))


@register_loss
def spearman(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    epoch: int = 0,
    n_epochs: int = 1,
    temperature: float = 0.01,
    rank: str = "sigmoid",
    strength: float = 1.0,
    target_rank: str = "hard",
    weight: float = 1.0,
) -> torch.Tensor:
    """``weight · (1 − soft Spearman)``: 0 for a perfect ranking, 2·weight for a reversed one.

    The reference code's ``−ρ/100`` is ``weight=0.01`` up to a constant (same gradients).
    """
    return weight * (1.0 - soft_spearman(pred, target, temperature, rank, strength, target_rank))


@register_loss
def mse_to_spearman(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    epoch: int = 0,
    n_epochs: int = 1,
    temperature: float = 0.01,
    rank: str = "sigmoid",
    strength: float = 1.0,
    target_rank: str = "hard",
    weight: float = 1.0,
) -> torch.Tensor:
    """``(1 − α)·MSE + α·weight·(1 − soft Spearman)`` with ``α = epoch / (n_epochs − 1)``.

    The paper's VideoMem loss: learn the scale first, then move to ranking.
    """
    alpha = epoch / (n_epochs - 1) if n_epochs > 1 else 1.0
    loss = (1.0 - alpha) * mse(pred, target)
    if alpha > 0.0:
        loss = loss + alpha * spearman(
            pred,
            target,
            temperature=temperature,
            rank=rank,
            strength=strength,
            target_rank=target_rank,
            weight=weight,
        )
    return loss


def loss_parameters(name: str) -> list[str]:
    """The parameters a loss takes beyond the shared signature (e.g. ``c, p, centre``)."""
    shared = {"pred", "target", "epoch", "n_epochs"}
    return [p for p in inspect.signature(_LOSSES.get(name)).parameters if p not in shared]


def get_loss(name: str, **params: Any) -> Loss:
    """The loss registered as `name`, with its keyword parameters bound (e.g. ``c=5, p=1``);
    a parameter the loss does not take is refused."""
    fn = _LOSSES.get(name)
    known = loss_parameters(name)
    unknown = sorted(set(params) - set(known))
    if unknown:
        takes = ", ".join(known) or "none"
        raise TiermemError(f"loss {name} takes no parameter {', '.join(unknown)} (its parameters: {takes})")
    return functools.partial(fn, **params) if params else fn


def list_losses() -> list[str]:
    """Names accepted by `get_loss`."""
    return _LOSSES.names()


__all__ = [
    "Loss",
    "get_loss",
    "hard_rank",
    "l1",
    "list_losses",
    "loss_parameters",
    "mse",
    "mse_tails",
    "mse_to_spearman",
    "register_loss",
    "sigmoid_rank",
    "soft_rank",
    "soft_spearman",
    "spearman",
    "tail_weights",
]

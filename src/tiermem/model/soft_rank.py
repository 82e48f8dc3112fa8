"""Soft ranks by projection onto the permutahedron (Blondel, Teboul, Berthet, Djolonga, ICML 2020).

With l2 regularisation of strength ε, the soft ranks of a vector θ (1 for the smallest, as
`torchsort.soft_rank` numbers them) are the Euclidean projection of θ/ε onto the permutahedron
of (n, n-1, ..., 1). The projection reduces to an isotonic regression: with σ sorting θ in
decreasing order and w = (n, ..., 1),

    v = argmin_{v_1 >= ... >= v_n} ||v - (θ_σ/ε - w)||²,     soft_rank(θ) = θ/ε - v_{σ⁻¹},

solved exactly by pool-adjacent-violators (PAV): v is constant on blocks, each the mean of
its entries. As ε -> 0 no block pools and the ranks are exact; once ε exceeds the largest gap
times n, everything pools into one block and soft_rank(θ) = θ/ε - mean(θ/ε) + (n + 1)/2, an
affine map of θ (so Spearman on such ranks is Pearson correlation).

The blocks of every row are found together (`_pav_blocks`). Gradients: the blocks are found without gradient (they are locally constant in θ), and v is
written as block means of θ_σ/ε - w in torch, so autograd gives the exact Jacobian of the
projection wherever the blocks do not change.
"""

from __future__ import annotations

import torch


def _pav_blocks(s: torch.Tensor) -> torch.Tensor:
    """Block index of every entry of the decreasing isotonic regression of each row of `s`.

    Pool-adjacent-violators run on all rows and all blocks at once: every pass merges each
    block whose mean is not below the next block's mean (a violation of v_1 >= v_2 >= ...)
    with that next block. Merging adjacent violators in any order reaches the same unique
    solution, so merging all of them in one pass is PAV; a pass is a few tensor operations
    over the whole batch, and there are at most n passes (a handful in practice).
    """
    rows, n = s.shape
    starts = torch.ones_like(s, dtype=torch.bool)  # True where an entry opens a block
    offset = (n * torch.arange(rows, device=s.device))[:, None]
    while True:
        blocks = torch.cumsum(starts, dim=1) - 1
        means = _block_means(s, blocks + offset)
        merge = starts[:, 1:] & (means[:, :-1] <= means[:, 1:])
        if not bool(merge.any()):
            return blocks
        starts[:, 1:] &= ~merge


def _block_means(s: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Each entry replaced by the mean of its block (`ids`: block numbers unique across rows)."""
    flat, size = ids.reshape(-1), s.numel()
    sums = torch.zeros(size, dtype=s.dtype, device=s.device).index_add(0, flat, s.reshape(-1))
    counts = torch.zeros(size, dtype=s.dtype, device=s.device).index_add(
        0, flat, torch.ones_like(s.reshape(-1))
    )
    return (sums / counts.clamp(min=1))[flat].reshape(s.shape)


def soft_rank(values: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Soft ranks (1 = smallest) along the last dimension, l2-regularised with `strength`; any
    leading dimensions are a batch. Differentiable."""
    if strength <= 0:
        raise ValueError(f"soft_rank: strength must be > 0, got {strength}")
    z = values / strength
    n = z.shape[-1]
    flat = z.reshape(-1, n)
    order = torch.argsort(flat.detach(), dim=-1, descending=True)
    w = torch.arange(n, 0, -1, dtype=flat.dtype, device=flat.device)
    s = torch.gather(flat, -1, order) - w  # θ_σ/ε - w, row by row
    with torch.no_grad():
        blocks = _pav_blocks(s.detach())
    v = _block_means(s, blocks + (n * torch.arange(len(flat), device=flat.device))[:, None])
    ranks_sorted = torch.gather(flat, -1, order) - v
    out = torch.empty_like(flat).scatter(-1, order, ranks_sorted)
    return out.reshape(values.shape)


__all__ = ["soft_rank"]

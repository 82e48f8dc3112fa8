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

Gradients: the blocks are found without gradient (they are locally constant in θ), and v is
written as block means of θ_σ/ε - w in torch, so autograd gives the exact Jacobian of the
projection wherever the blocks do not change.
"""

from __future__ import annotations

import numpy as np
import torch


def _pav_blocks(s: np.ndarray) -> np.ndarray:
    """Block index of every entry of the decreasing isotonic regression of `s` (PAV)."""
    sums: list[float] = []
    counts: list[int] = []
    for value in s:
        sums.append(float(value))
        counts.append(1)
        # Merge while a block's mean exceeds the one before it (a violation of v_1 >= v_2 >= ...).
        while len(sums) > 1 and sums[-2] / counts[-2] <= sums[-1] / counts[-1]:
            last_sum, last_count = sums.pop(), counts.pop()
            sums[-1] += last_sum
            counts[-1] += last_count
    return np.repeat(np.arange(len(counts)), counts)


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
    blocks = np.stack([_pav_blocks(row) for row in s.detach().cpu().numpy()]) if n else np.zeros((len(flat), 0), int)
    # Block means by a scatter over (row, block) ids: every row's blocks numbered apart.
    ids = torch.as_tensor(blocks + n * np.arange(len(flat))[:, None], device=flat.device).reshape(-1)
    sums = torch.zeros(len(flat) * n, dtype=flat.dtype, device=flat.device).index_add(0, ids, s.reshape(-1))
    counts = torch.zeros(len(flat) * n, dtype=flat.dtype, device=flat.device).index_add(0, ids, torch.ones_like(s.reshape(-1)))
    v = (sums / counts.clamp(min=1))[ids].reshape(s.shape)
    ranks_sorted = torch.gather(flat, -1, order) - v
    out = torch.empty_like(flat).scatter(-1, order, ranks_sorted)
    return out.reshape(values.shape)


__all__ = ["soft_rank"]

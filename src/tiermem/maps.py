"""2-D t-SNE maps of each block's representation, coloured by memorability, for the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tiermem.blocks import BlockLayout
from tiermem.standardise import standardise


def tsne_maps(
    X: np.ndarray, y: np.ndarray, layout: Sequence[BlockLayout], *, seed: int = 0, max_points: int = 1500
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Block name -> (2-D t-SNE of its columns, scores); each block standardised, PCA to 30 first.

    At most `max_points` videos (a seeded sample) keep t-SNE to seconds; blocks of fewer than
    10 videos get no map.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(X))[:max_points])
    X, y = X[keep], y[keep]
    maps = {}
    start = 0
    for b in layout:
        block = X[:, start : start + len(b.feature_names)].astype(np.float64)
        start += len(b.feature_names)
        if len(block) < 10:
            continue
        block = standardise(block)
        n_pca = min(30, len(block) - 1)
        if block.shape[1] > n_pca:
            block = PCA(n_components=n_pca, random_state=seed).fit_transform(block)
        perplexity = float(min(30, max(2, (len(block) - 1) / 3)))
        init = "pca" if block.shape[1] >= 2 else "random"  # a one-column block has no second axis
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init=init).fit_transform(block)
        maps[b.name] = (xy.astype(np.float32), y.astype(np.float32))
    return maps


__all__ = ["tsne_maps"]

"""Distinctiveness: how much a video stands out from a context corpus.

Videos unlike the others they are seen among are remembered better (M3-S, Dumont et al. 2023,
after Bylinskii et al. 2015). The context is the training split by default, or any corpus the
user names. Each method is a scikit-learn-style estimator (`base.Distinctiveness`) fitted on
the context, giving a small named vector per video, one scalar score and its percentile:

- ``dbscan`` (the paper's): PCA, t-SNE and DBSCAN clusters of the context; one-hot over
  clusters + noise, new videos assigned by an MLP.
- ``knn``: distance to the nearest and mean distance to the k nearest context videos (PCA space).
- ``kde``: Gaussian kernel log density in the whitened PCA space, bandwidth by Scott/Silverman.
- ``cosine``: cosine similarity to the context mean and to every context video (raw space).

    >>> from tiermem.distinctiveness import get_distinctiveness
    >>> rng = np.random.default_rng(0)
    >>> X_context, X_new = rng.normal(size=(50, 8)), rng.normal(size=(3, 8)) + 5
    >>> est = get_distinctiveness("knn", source="mid", k=10)
    >>> F_context = est.fit_transform(X_context)   # leave-one-out on the context
    >>> F_new = est.transform(X_new)
    >>> est.feature_names
    ['knn_mid_nn_dist', 'knn_mid_mean_dist']
    >>> bool(F_new[:, 0].min() > F_context[:, 0].max())   # far from the context: more distinctive
    True
"""

from tiermem.lazy import lazy_exports

_EXPORTS = {
    "SCHEMA_VERSION": "tiermem.distinctiveness.base",
    "Distinctiveness": "tiermem.distinctiveness.base",
    "NotFittedError": "tiermem.distinctiveness.errors",
    "get_distinctiveness": "tiermem.distinctiveness.registry",
    "list_distinctiveness": "tiermem.distinctiveness.registry",
    "register_distinctiveness": "tiermem.distinctiveness.registry",
    "DistinctivenessReport": "tiermem.distinctiveness.context",
    "distinctiveness_report": "tiermem.distinctiveness.context",
    "load_source_block": "tiermem.distinctiveness.context",
    "CosineDistinctiveness": "tiermem.distinctiveness.cosine",
    "DBSCANDistinctiveness": "tiermem.distinctiveness.dbscan",
    "knee_eps": "tiermem.distinctiveness.dbscan",
    "KDEDistinctiveness": "tiermem.distinctiveness.kde",
    "KNNDistinctiveness": "tiermem.distinctiveness.knn",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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

    >>> est = get_distinctiveness("knn", source="mid", k=10)
    >>> F_context = est.fit_transform(X_context)   # leave-one-out on the context
    >>> F_new = est.transform(X_new)
"""

from tiermem.distinctiveness.base import (
    SCHEMA_VERSION,
    Distinctiveness,
    NotFittedError,
    get_distinctiveness,
    list_distinctiveness,
    register_distinctiveness,
)
from tiermem.distinctiveness.context import DistinctivenessReport, distinctiveness_report, load_source_block
from tiermem.distinctiveness.cosine import CosineDistinctiveness
from tiermem.distinctiveness.dbscan import DBSCANDistinctiveness, knee_eps
from tiermem.distinctiveness.kde import KDEDistinctiveness
from tiermem.distinctiveness.knn import KNNDistinctiveness

__all__ = [
    "CosineDistinctiveness",
    "DBSCANDistinctiveness",
    "Distinctiveness",
    "DistinctivenessReport",
    "KDEDistinctiveness",
    "KNNDistinctiveness",
    "NotFittedError",
    "SCHEMA_VERSION",
    "distinctiveness_report",
    "get_distinctiveness",
    "knee_eps",
    "list_distinctiveness",
    "load_source_block",
    "register_distinctiveness",
]

"""Distinctiveness: how much a video stands out from a context corpus.

Videos unlike the others they are seen among are remembered better (M3-S, Dumont et al. 2023,
after Bylinskii et al. 2015). The context is the training split by default, or any corpus the
user names. Each method is an estimator with scikit-learn's contract — the constructor only
stores parameters, `fit(X_context)` learns (attributes end in `_`), `transform(X)` scores *new*
videos and never learns — and turns a source block (mid, high, text, ...) into a small named
vector per video:

- ``dbscan`` (the paper's): PCA to 10 dims, t-SNE to 3, DBSCAN with eps at the knee of the
  k-distance curve; an MLP trained on the context (PCA space -> cluster or noise) assigns new
  videos, since t-SNE cannot embed unseen points. One-hot over clusters + noise.
- ``knn``: distance to the nearest and mean distance to the k nearest context videos (PCA space).
- ``kde``: Gaussian kernel log density in the whitened PCA space, bandwidth by Scott/Silverman.
- ``cosine``: cosine similarity to the context mean, and mean cosine similarity to every
  context video, in the raw source space (PCA scores are centred, so their mean is 0).

`fit_transform(X_context)` gives the context's own features *leave-one-out* (a video is never
its own neighbour, never adds its own kernel, never counts in the mean it is compared to), so a
head trained on the context sees the same kind of value a new video gets. Like scikit-learn's
`TargetEncoder`, `fit(X).transform(X)` therefore differs from `fit_transform(X)` on purpose.
For ``dbscan`` the context keeps its DBSCAN labels (the paper's choice).

Every method also gives one scalar `score` (higher = more distinctive) and its `percentile`
within the context's own leave-one-out scores. Fitted state is plain data: `state_dict()` is
numpy arrays plus JSON values, `save()` writes one npz (no pickle) with a schema version.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import NotFittedError as _SklearnNotFitted

from tiermem.blocks import Block, load_block
from tiermem.errors import DataMismatchError, TiermemError


class NotFittedError(TiermemError, _SklearnNotFitted):
    """Used before `fit`: a tiermem error (one line in the CLI) that scikit-learn code also recognises."""

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_CHUNK_ROWS = 1024  # query rows per pairwise-distance chunk: bounds memory at ~8 MB per 1k context


# ---------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------
def _as_matrix(X: Any, what: str) -> np.ndarray:
    """Float64 (N, D) copy of `X`; NaN/inf and wrong rank raise DataMismatchError."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise DataMismatchError(f"{what}: expected a 2-D matrix (videos x features), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise DataMismatchError(f"{what}: NaN or inf in {len(rows)} row(s), first at row {rows[0]}")
    return arr


def knee_eps(X: np.ndarray, min_samples: int) -> float:
    """DBSCAN's eps from the data: the knee of the sorted k-distance curve (Ester et al. 1996).

    k-distance = distance to the `min_samples`-th nearest point counting the point itself, so a
    point is a DBSCAN core point exactly when its k-distance <= eps. The curve sorted ascending is
    flat inside clusters and rises steeply at sparse points; with both axes scaled to [0, 1] the
    knee is the point farthest below the chord from the first to the last value (the "Kneedle"
    rule, Satopaa et al. 2011). A flat curve (all equal) returns that common value.
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float64)
    k = min(int(min_samples), len(X))
    dist, _ = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    kdist = np.sort(dist[:, -1])
    span = kdist[-1] - kdist[0]
    if span <= 0:
        eps = float(kdist[0])
    else:
        x = np.linspace(0.0, 1.0, len(kdist))
        y = (kdist - kdist[0]) / span
        eps = float(kdist[int(np.argmax(x - y))])
    positive = kdist[kdist > 0]
    if eps <= 0:  # duplicates only: DBSCAN needs eps > 0
        eps = float(positive[0]) if len(positive) else 1e-12
    return eps


class _Projection:
    """Standardise (optional) then PCA, fitted on the context; stored as arrays.

    Implemented as a numpy projection from sklearn's fitted PCA arrays so that a loaded state
    gives bit-identical scores (no refit, no solver randomness).
    """

    def __init__(self, n_components: int, standardize: bool) -> None:
        self.n_components = n_components
        self.standardize = standardize

    def fit_transform(self, X: np.ndarray, random_state: int) -> np.ndarray:
        from sklearn.decomposition import PCA

        if self.standardize:
            self.center_ = X.mean(axis=0)
            scale = X.std(axis=0)
            self.scale_ = np.where(scale > 0, scale, 1.0)
        else:
            self.center_ = np.zeros(X.shape[1])
            self.scale_ = np.ones(X.shape[1])
        S = (X - self.center_) / self.scale_
        n = min(self.n_components, X.shape[0], X.shape[1])
        pca = PCA(n_components=n, svd_solver="full", random_state=random_state).fit(S)
        self.pca_mean_ = pca.mean_.astype(np.float64)
        self.components_ = pca.components_.astype(np.float64)
        var = pca.explained_variance_.astype(np.float64)
        # Constant directions would divide by zero when whitening; give them unit scale.
        self.explained_variance_ = np.where(var > 1e-12, var, 1.0)
        return self.transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.center_) / self.scale_ - self.pca_mean_) @ self.components_.T

    def whiten(self, Z: np.ndarray) -> np.ndarray:
        return Z / np.sqrt(self.explained_variance_)

    _ARRAYS = ("center_", "scale_", "pca_mean_", "components_", "explained_variance_")

    def state(self, prefix: str = "proj_") -> dict[str, np.ndarray]:
        return {prefix + name.rstrip("_"): getattr(self, name) for name in self._ARRAYS}

    def load(self, state: Mapping[str, Any], prefix: str = "proj_") -> None:
        for name in self._ARRAYS:
            setattr(self, name, np.asarray(state[prefix + name.rstrip("_")], dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# the estimator contract
# ---------------------------------------------------------------------------------------------
class Distinctiveness:
    """Base class: a context-fitted scorer of how much each video stands out.

    Subclasses set `method`, list their constructor parameters in `_PARAMS`, and implement
    `_fit` (returns the context's leave-one-out features), `_features`, `_score`, `_names`,
    `_state` / `_load`.
    """

    method: ClassVar[str] = ""
    _PARAMS: ClassVar[tuple[str, ...]] = ()

    source: str

    # -- description ---------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-able), as scikit-learn's `get_params`."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def feature_names(self) -> list[str]:
        """Names of `transform`'s columns: ``<method>_<source>_<what>``."""
        self._check_fitted()
        return [f"{self.method}_{self.source}_{what}" for what in self._names()]

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(X_context) first")

    def _check_query(self, X: Any) -> np.ndarray:
        self._check_fitted()
        arr = _as_matrix(X, f"{self.method} distinctiveness ({self.source})")
        if arr.shape[1] != self.n_features_in_:
            raise DataMismatchError(
                f"{self.method} distinctiveness on source {self.source!r}: expected "
                f"{self.n_features_in_} features per video (as in the context), got {arr.shape[1]}"
            )
        return arr

    # -- learning ------------------------------------------------------------------------------
    def fit(self, X_context: Any) -> "Distinctiveness":
        """Learn the context; the context's own leave-one-out features are computed on the way."""
        self.fit_transform(X_context)
        return self

    def fit_transform(self, X_context: Any) -> np.ndarray:
        """Fit on the context and return its leave-one-out features (see module docstring)."""
        X = _as_matrix(X_context, f"{self.method} distinctiveness context ({self.source})")
        minimum = self._min_context()
        if len(X) < minimum:
            raise DataMismatchError(
                f"{self.method} distinctiveness context ({self.source}): needs at least {minimum} "
                f"videos, got {len(X)}"
            )
        self.n_features_in_ = X.shape[1]
        self.n_context_ = X.shape[0]
        F = self._fit(X)
        self.context_scores_ = np.sort(self._score(F))
        return F

    def _min_context(self) -> int:
        return 2

    # -- inference -----------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Features of new videos (N, len(feature_names)) against the fitted context."""
        return self._features(self._check_query(X))

    def score(self, X: Any) -> np.ndarray:
        """One number per video, higher = more distinctive (the method's main feature)."""
        return self._score(self.transform(X))

    def score_features(self, F: np.ndarray) -> np.ndarray:
        """The scalar score from already computed features (e.g. `fit_transform`'s)."""
        return self._score(np.asarray(F, dtype=np.float64))

    def percentile(self, scores: Any) -> np.ndarray:
        """Percentile (0-100) of each score among the context's leave-one-out scores.

        Ties count half (scipy's ``percentileofscore(kind="mean")``), so the many videos of one
        big DBSCAN cluster land mid-range rather than all at the top.
        """
        from tiermem.evaluate import midrank_percentile

        self._check_fitted()
        return midrank_percentile(self.context_scores_, scores)

    def summary(self) -> dict[str, Any]:
        """What was fitted, JSON-able: for logs, `--json` output and reports."""
        self._check_fitted()
        return {
            "method": self.method,
            "source": self.source,
            "n_context": int(self.n_context_),
            "n_features_in": int(self.n_features_in_),
            "features": self.feature_names,
            **self._summary(),
        }

    def _summary(self) -> dict[str, Any]:
        return {}

    # -- fitted state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Fitted state: numpy arrays plus JSON-able values (method, params, schema version)."""
        self._check_fitted()
        return {
            "schema_version": SCHEMA_VERSION,
            "method": self.method,
            "params": self.get_params(),
            "n_features_in": int(self.n_features_in_),
            "n_context": int(self.n_context_),
            "context_scores": self.context_scores_,
            **self._state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "Distinctiveness":
        """Restore fitted state produced by `state_dict` (same method)."""
        version = int(state.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            raise TiermemError(
                f"distinctiveness state has schema version {version}; this tiermem reads {SCHEMA_VERSION}"
            )
        if state.get("method") != self.method:
            raise TiermemError(f"state is for method {state.get('method')!r}, not {self.method!r}")
        for name, value in dict(state.get("params", {})).items():
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        self.n_features_in_ = int(state["n_features_in"])
        self.n_context_ = int(state["n_context"])
        self.context_scores_ = np.asarray(state["context_scores"], dtype=np.float64)
        self._load(state)
        return self

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "Distinctiveness":
        """Build the right estimator for `state["method"]` and load it."""
        method = str(state.get("method"))
        est = get_distinctiveness(method, **dict(state.get("params", {})))
        return est.load_state_dict(state)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted state to one npz file atomically: arrays + a JSON entry, no pickle."""
        state = self.state_dict()
        arrays = {k: np.asarray(v) for k, v in state.items() if isinstance(v, np.ndarray)}
        meta = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        from tiermem.store import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, __json__=np.array(json.dumps(meta, sort_keys=True)), **arrays))
        return path

    @staticmethod
    def load(path: str | os.PathLike[str]) -> "Distinctiveness":
        """Read a file written by `save` (never unpickles) and rebuild the estimator."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                state: dict[str, Any] = {k: npz[k] for k in npz.files if k != "__json__"}
                meta = json.loads(str(npz["__json__"]))
        except (OSError, ValueError, KeyError) as exc:
            raise TiermemError(f"{path}: not a tiermem distinctiveness file ({exc})") from None
        state.update(meta)
        return Distinctiveness.from_state(state)

    # -- subclass hooks ------------------------------------------------------------------------
    def _fit(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _features(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score(self, F: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _names(self) -> list[str]:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, state: Mapping[str, Any]) -> None:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------
class KNNDistinctiveness(Distinctiveness):
    """Distance to the nearest and mean distance to the `k` nearest context videos (PCA space).

    Neighbours come from scikit-learn's exact `NearestNeighbors`, rebuilt on load from the stored
    reduced context (deterministic). On the context itself, `kneighbors()` without a query leaves
    each video's own index out (leave-one-out).
    """

    method = "knn"
    _PARAMS = ("source", "k", "n_components", "standardize", "random_state")

    def __init__(
        self, source: str = "mid", k: int = 10, n_components: int = 10, standardize: bool = True,
        random_state: int = 0,
    ) -> None:
        self.source = source
        self.k = k
        self.n_components = n_components
        self.standardize = standardize
        self.random_state = random_state

    def _min_context(self) -> int:
        return self.k + 1

    def _index(self) -> Any:
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(n_neighbors=self.k).fit(self.context_)

    def _fit(self, X: np.ndarray) -> np.ndarray:
        self.projection_ = _Projection(self.n_components, self.standardize)
        self.context_ = self.projection_.fit_transform(X, self.random_state)
        self.index_ = self._index()
        dist, _ = self.index_.kneighbors()  # no query: each context video's own index left out
        return self._from_distances(dist)

    def _features(self, X: np.ndarray) -> np.ndarray:
        dist, _ = self.index_.kneighbors(self.projection_.transform(X))
        return self._from_distances(dist)

    @staticmethod
    def _from_distances(dist: np.ndarray) -> np.ndarray:
        return np.column_stack([dist[:, 0], dist.mean(axis=1)])

    def _score(self, F: np.ndarray) -> np.ndarray:
        return F[:, 1]

    def _names(self) -> list[str]:
        return ["nn_dist", "mean_dist"]

    def _state(self) -> dict[str, Any]:
        return {"context": self.context_, **self.projection_.state()}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.projection_ = _Projection(self.n_components, self.standardize)
        self.projection_.load(state)
        self.context_ = np.asarray(state["context"], dtype=np.float64)
        self.index_ = self._index()


class KDEDistinctiveness(Distinctiveness):
    """Gaussian kernel log density of each video among the context, in the whitened PCA space.

    Whitening (each PCA axis divided by its standard deviation) makes one isotropic bandwidth fit
    every axis, so Scott's factor n^(-1/(d+4)) or Silverman's (n(d+2)/4)^(-1/(d+4)) applies as in
    scipy's `gaussian_kde`. Computed in numpy in chunks with the context video's own kernel
    removed for leave-one-out (subtracting it from the full density would cancel catastrophically
    for isolated videos). Low density = distinctive.
    """

    method = "kde"
    _PARAMS = ("source", "bandwidth", "n_components", "standardize", "random_state")

    def __init__(
        self, source: str = "mid", bandwidth: str | float = "scott", n_components: int = 10,
        standardize: bool = True, random_state: int = 0,
    ) -> None:
        self.source = source
        self.bandwidth = bandwidth
        self.n_components = n_components
        self.standardize = standardize
        self.random_state = random_state

    def _bandwidth(self, n: int, d: int) -> float:
        if self.bandwidth == "scott":
            return float(n ** (-1.0 / (d + 4)))
        if self.bandwidth == "silverman":
            return float((n * (d + 2) / 4.0) ** (-1.0 / (d + 4)))
        try:
            h = float(self.bandwidth)
        except (TypeError, ValueError):
            raise TiermemError(
                f"kde bandwidth must be 'scott', 'silverman' or a positive number, got {self.bandwidth!r}"
            ) from None
        if not h > 0:
            raise TiermemError(f"kde bandwidth must be positive, got {h}")
        return h

    def _fit(self, X: np.ndarray) -> np.ndarray:
        self.projection_ = _Projection(self.n_components, self.standardize)
        self.context_ = self.projection_.whiten(self.projection_.fit_transform(X, self.random_state))
        self.bandwidth_ = self._bandwidth(*self.context_.shape)
        return self._log_density(self.context_, leave_one_out=True)[:, None]

    def _features(self, X: np.ndarray) -> np.ndarray:
        W = self.projection_.whiten(self.projection_.transform(X))
        return self._log_density(W, leave_one_out=False)[:, None]

    def _log_density(self, W: np.ndarray, leave_one_out: bool) -> np.ndarray:
        from sklearn.metrics.pairwise import euclidean_distances

        C, h = self.context_, self.bandwidth_
        n_ref, d = C.shape[0] - int(leave_one_out), C.shape[1]
        norm = math.log(n_ref) + 0.5 * d * math.log(2.0 * math.pi * h * h)
        out = np.empty(len(W))
        for start in range(0, len(W), _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, len(W))
            logk = -0.5 * euclidean_distances(W[start:stop], C, squared=True) / (h * h)
            if leave_one_out:
                rows = np.arange(stop - start)
                logk[rows, start + rows] = -np.inf
            out[start:stop] = logsumexp(logk, axis=1) - norm
        return out

    def _score(self, F: np.ndarray) -> np.ndarray:
        return -F[:, 0]

    def _names(self) -> list[str]:
        return ["log_density"]

    def _summary(self) -> dict[str, Any]:
        return {"bandwidth": self.bandwidth_}

    def _state(self) -> dict[str, Any]:
        return {"context": self.context_, "bandwidth_value": float(self.bandwidth_),
                **self.projection_.state()}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.projection_ = _Projection(self.n_components, self.standardize)
        self.projection_.load(state)
        self.context_ = np.asarray(state["context"], dtype=np.float64)
        self.bandwidth_ = float(state["bandwidth_value"])


class CosineDistinctiveness(Distinctiveness):
    """Cosine similarity to the context mean, and mean cosine similarity to each context video.

    Computed in the raw source space: both need a non-centred space (PCA scores average to 0).
    The mean pairwise similarity is exact and cheap: x̂ · mean(ĉ). Leave-one-out removes the
    video from both means. Low similarity = distinctive; the score is 1 - mean similarity.
    """

    method = "cosine"
    _PARAMS = ("source",)

    def __init__(self, source: str = "mid") -> None:
        self.source = source

    @staticmethod
    def _unit(X: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(X, axis=1, keepdims=True)
        return np.divide(X, norm, out=np.zeros_like(X), where=norm > 0)

    def _fit(self, X: np.ndarray) -> np.ndarray:
        n = len(X)
        self.mean_ = X.mean(axis=0)
        U = self._unit(X)
        self.mean_unit_ = U.mean(axis=0)
        means = (n * self.mean_ - X) / (n - 1)
        mean_units = (n * self.mean_unit_ - U) / (n - 1)
        sim_to_mean = np.einsum("ij,ij->i", U, self._unit(means))
        mean_sim = np.einsum("ij,ij->i", U, mean_units)
        return np.column_stack([sim_to_mean, mean_sim])

    def _features(self, X: np.ndarray) -> np.ndarray:
        U = self._unit(X)
        mean_dir = self._unit(self.mean_[None, :])[0]
        return np.column_stack([U @ mean_dir, U @ self.mean_unit_])

    def _score(self, F: np.ndarray) -> np.ndarray:
        return 1.0 - F[:, 1]

    def _names(self) -> list[str]:
        return ["sim_to_mean", "mean_sim"]

    def _state(self) -> dict[str, Any]:
        return {"mean": self.mean_, "mean_unit": self.mean_unit_}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.mean_unit_ = np.asarray(state["mean_unit"], dtype=np.float64)


class DBSCANDistinctiveness(Distinctiveness):
    """The paper's clusters: PCA -> t-SNE -> DBSCAN on the context, an MLP for new videos.

    eps is the knee of the k-distance curve (`knee_eps`, k = `min_samples`); `min_samples`
    defaults to 2 x the t-SNE dimensions (Sander et al. 1998's rule of thumb). The classifier is
    scikit-learn's `MLPClassifier` (ReLU) on the whitened PCA scores, target = cluster or noise;
    its weights are kept as arrays and new videos go through the same numpy forward pass before
    and after saving. t-SNE is never run on new videos. The score is 1 - the share of the context
    in the video's cluster (noise = 1): small clusters and noise are distinctive.

    Unlike the other methods, `fit_transform` gives the context its own DBSCAN labels (as the
    paper does), not a leave-one-out value; new videos get the classifier's assignment, whose
    agreement with those labels on the context is `classifier_accuracy_` (0.99-1.00 on
    realbench).
    """

    method = "dbscan"
    _PARAMS = (
        "source", "n_components", "standardize", "tsne_components", "perplexity", "min_samples",
        "hidden_layer_sizes", "max_iter", "random_state",
    )

    def __init__(
        self, source: str = "mid", n_components: int = 10, standardize: bool = True,
        tsne_components: int = 3, perplexity: float = 30.0, min_samples: int | None = None,
        hidden_layer_sizes: tuple[int, ...] = (64,), max_iter: int = 500, random_state: int = 0,
    ) -> None:
        self.source = source
        self.n_components = n_components
        self.standardize = standardize
        self.tsne_components = tsne_components
        self.perplexity = perplexity
        self.min_samples = min_samples
        self.hidden_layer_sizes = tuple(hidden_layer_sizes)
        self.max_iter = max_iter
        self.random_state = random_state

    def _min_samples(self) -> int:
        return int(self.min_samples) if self.min_samples else 2 * int(self.tsne_components)

    def _min_context(self) -> int:
        return max(10, self._min_samples() + 1)

    def _fit(self, X: np.ndarray) -> np.ndarray:
        from sklearn.cluster import DBSCAN
        from sklearn.manifold import TSNE
        from sklearn.neural_network import MLPClassifier

        self.projection_ = _Projection(self.n_components, self.standardize)
        Z = self.projection_.fit_transform(X, self.random_state)
        perplexity = min(float(self.perplexity), (len(Z) - 1) / 3.0)
        self.embedding_ = TSNE(
            n_components=self.tsne_components, perplexity=perplexity, init="pca",
            learning_rate="auto", random_state=self.random_state,
        ).fit_transform(Z)
        min_samples = self._min_samples()
        self.eps_ = knee_eps(self.embedding_, min_samples)
        labels = DBSCAN(eps=self.eps_, min_samples=min_samples).fit_predict(self.embedding_)
        self.n_clusters_ = int(labels.max() + 1)
        target = np.where(labels < 0, self.n_clusters_, labels)  # noise is the last class
        counts = np.bincount(target, minlength=self.n_clusters_ + 1)
        self.cluster_share_ = counts / len(target)
        self.noise_share_ = float(self.cluster_share_[-1])

        self.classes_ = np.unique(target)
        self.classifier_converged_ = True
        if len(self.classes_) > 1:
            clf = MLPClassifier(
                hidden_layer_sizes=self.hidden_layer_sizes, activation="relu",
                max_iter=self.max_iter, random_state=self.random_state,
            )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                clf.fit(self.projection_.whiten(Z), target)
            # Not converged after max_iter usually means still fitting the last few border
            # points; the context accuracy below says how well it separates the clusters.
            self.classifier_converged_ = not any(
                issubclass(w.category, ConvergenceWarning) for w in caught
            )
            self.coefs_ = [w.astype(np.float64) for w in clf.coefs_]
            self.intercepts_ = [b.astype(np.float64) for b in clf.intercepts_]
        else:
            self.coefs_, self.intercepts_ = [], []
        self.classifier_accuracy_ = float(np.mean(self._assign(Z) == target))
        logger.info(
            "dbscan distinctiveness (%s): eps=%.4g min_samples=%d -> %d clusters, noise share %.3f; "
            "classifier accuracy on the context %.3f (converged: %s)",
            self.source, self.eps_, min_samples, self.n_clusters_, self.noise_share_,
            self.classifier_accuracy_, self.classifier_converged_,
        )
        return self._one_hot(target)

    def _assign(self, Z: np.ndarray) -> np.ndarray:
        """Cluster index (noise = n_clusters_) of PCA scores, by the stored MLP's forward pass."""
        if not self.coefs_:
            return np.full(len(Z), int(self.classes_[0]))
        h = self.projection_.whiten(Z)
        for W, b in zip(self.coefs_[:-1], self.intercepts_[:-1]):
            h = np.maximum(h @ W + b, 0.0)
        logits = h @ self.coefs_[-1] + self.intercepts_[-1]
        idx = (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else np.argmax(logits, axis=1)
        return self.classes_[idx]

    def _one_hot(self, target: np.ndarray) -> np.ndarray:
        return np.eye(self.n_clusters_ + 1)[target]

    def _features(self, X: np.ndarray) -> np.ndarray:
        return self._one_hot(self._assign(self.projection_.transform(X)))

    def _score(self, F: np.ndarray) -> np.ndarray:
        share = self.cluster_share_.copy()
        share[-1] = 0.0  # noise: nobody to blend in with
        return 1.0 - F @ share

    def _names(self) -> list[str]:
        return [f"cluster_{i}" for i in range(self.n_clusters_)] + ["noise"]

    def _summary(self) -> dict[str, Any]:
        return {
            "eps": self.eps_, "min_samples": self._min_samples(), "n_clusters": self.n_clusters_,
            "noise_share": self.noise_share_, "classifier_accuracy": self.classifier_accuracy_,
            "classifier_converged": self.classifier_converged_,
        }

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            **self.projection_.state(),
            "embedding": self.embedding_,
            "eps": float(self.eps_),
            "n_clusters": int(self.n_clusters_),
            "classifier_accuracy": float(self.classifier_accuracy_),
            "classifier_converged": bool(self.classifier_converged_),
            "cluster_share": self.cluster_share_,
            "classes": self.classes_.astype(np.int64),
            "n_layers": len(self.coefs_),
        }
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            state[f"mlp_W{i}"] = W
            state[f"mlp_b{i}"] = b
        return state

    def _load(self, state: Mapping[str, Any]) -> None:
        self.projection_ = _Projection(self.n_components, self.standardize)
        self.projection_.load(state)
        self.embedding_ = np.asarray(state["embedding"], dtype=np.float64)
        self.eps_ = float(state["eps"])
        self.n_clusters_ = int(state["n_clusters"])
        self.classifier_accuracy_ = float(state["classifier_accuracy"])
        self.classifier_converged_ = bool(state["classifier_converged"])
        self.cluster_share_ = np.asarray(state["cluster_share"], dtype=np.float64)
        self.noise_share_ = float(self.cluster_share_[-1])
        self.classes_ = np.asarray(state["classes"], dtype=np.int64)
        n_layers = int(state["n_layers"])
        self.coefs_ = [np.asarray(state[f"mlp_W{i}"], dtype=np.float64) for i in range(n_layers)]
        self.intercepts_ = [np.asarray(state[f"mlp_b{i}"], dtype=np.float64) for i in range(n_layers)]


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------
_METHODS: dict[str, type[Distinctiveness]] = {
    cls.method: cls
    for cls in (DBSCANDistinctiveness, KNNDistinctiveness, KDEDistinctiveness, CosineDistinctiveness)
}


def available_methods() -> list[str]:
    """Names accepted by `get_distinctiveness`."""
    return sorted(_METHODS)


def get_distinctiveness(method: str, **params: Any) -> Distinctiveness:
    """Build the estimator registered as `method` with its parameters (unfitted)."""
    try:
        cls = _METHODS[method]
    except KeyError:
        raise TiermemError(
            f"unknown distinctiveness method {method!r}; available: {', '.join(available_methods())}"
        ) from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise TiermemError(f"distinctiveness method {method!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# scoring feature tables (the library side of `tiermem distinct`)
# ---------------------------------------------------------------------------------------------
def _is_table_input(path: Path, source: str) -> bool:
    """A feature table, a feature store holding `source`, or a directory of .npy vectors."""
    from tiermem.blocks import TABLE_SUFFIXES

    if path.is_file():
        return path.name.lower().endswith(TABLE_SUFFIXES)
    if path.is_dir():
        return (path / f"{source}.parquet").is_file() or any(path.glob("*.npy"))
    return False


def _concat_blocks(blocks: Sequence[Block], name: str) -> Block:
    first = blocks[0]
    for b in blocks[1:]:
        if b.feature_names != first.feature_names:
            raise DataMismatchError(
                f"{b.source}: its {b.dim} feature columns differ from {first.source}'s {first.dim}"
            )
    ids = np.concatenate([b.ids for b in blocks])
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataMismatchError(f"video_id {uniq[counts > 1][0]!r} appears in more than one input")
    return Block(name, ids, list(first.feature_names), np.concatenate([b.values for b in blocks]),
                 ", ".join(b.source for b in blocks))


def load_source_block(
    inputs: Sequence[str | os.PathLike[str]],
    source: str,
    store: str | os.PathLike[str],
    console: Any = None,
) -> tuple[Block, list[tuple[str, str]]]:
    """One block of `source` features from tables and/or videos; returns (block, failures).

    Each input is a feature table (Parquet/CSV), a feature-store directory holding
    ``<source>.parquet``, a directory of ``<video_id>.npy``, or else videos and directories of
    videos, whose `source` tier is extracted into the feature store `store` (cached there, so
    context and queries share one fitted tier state). Videos that fail to decode come back as
    (path, reason) failures; the others are kept.
    """
    paths = [Path(p) for p in inputs]
    tables = [p for p in paths if _is_table_input(p, source)]
    videos = [p for p in paths if p not in tables]
    blocks: list[Block] = []
    for p in tables:
        blocks.append(load_block(p / f"{source}.parquet" if (p / f"{source}.parquet").is_file() else p, source))
    failures: list[tuple[str, str]] = []
    if videos:
        from tiermem.extract import extract, find_videos, video_ids

        report = extract(videos, tiers=[source], out=store, console=console)
        failures = list(report.failed)
        wanted = set(video_ids(find_videos(videos))) - {Path(p).stem for p, _ in failures}
        stored = load_block(Path(store) / f"{source}.parquet", source)
        keep = np.isin(stored.ids, sorted(wanted))
        if keep.any():
            blocks.append(Block(source, stored.ids[keep], stored.feature_names, stored.values[keep],
                                ", ".join(map(str, videos))))
    if not blocks:
        raise DataMismatchError(f"no usable {source} features in {', '.join(map(str, paths))}")
    return _concat_blocks(blocks, source), failures


@dataclass
class DistinctivenessReport:
    """Per-video distinctiveness of query videos against a context.

    `table` columns: video_id, distinctiveness, percentile (0-100 within the context), in_context
    (True: the video is in the context and got its leave-one-out value), then the method's features.
    """

    table: pd.DataFrame
    estimator: Distinctiveness

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.estimator.summary(), "videos": self.table.to_dict(orient="records")}


def _as_block(table: Block | str | os.PathLike[str]) -> Block:
    return table if isinstance(table, Block) else load_block(table)


def distinctiveness_report(
    context: Block | str | os.PathLike[str],
    query: Block | str | os.PathLike[str],
    method: str = "knn",
    source: str | None = None,
    **params: Any,
) -> DistinctivenessReport:
    """Fit `method` on the context block and score every video of the query block.

    Tables are read by `tiermem.blocks.load_block` (Parquet/CSV with `video_id`, a feature-store
    table, or a directory of .npy vectors); the query needs every feature column of the context.
    A query video that is also in the context gets its leave-one-out value, so scoring the
    context against itself ranks each video against the others. `source` names the features
    (default: the context block's name).
    """
    ctx, qry = _as_block(context), _as_block(query)
    where = {name: i for i, name in enumerate(qry.feature_names)}
    missing = [c for c in ctx.feature_names if c not in where]
    if missing:
        raise DataMismatchError(
            f"block {qry.name!r} ({qry.source}): missing {len(missing)} of the context's "
            f"{ctx.dim} feature columns, first {missing[0]!r}"
        )
    Xq = qry.values[:, [where[c] for c in ctx.feature_names]].astype(np.float64)
    est = get_distinctiveness(method, source=source or ctx.name, **params)
    F_context = est.fit_transform(ctx.values.astype(np.float64))
    position = {vid: i for i, vid in enumerate(ctx.ids)}
    rows = np.array([position.get(vid, -1) for vid in qry.ids], dtype=np.int64)
    in_context = rows >= 0
    F = np.empty((len(qry.ids), F_context.shape[1]))
    F[in_context] = F_context[rows[in_context]]
    if (~in_context).any():
        F[~in_context] = est.transform(Xq[~in_context])
    scores = est.score_features(F)
    out = pd.DataFrame({
        "video_id": qry.ids.astype(str),
        "distinctiveness": scores,
        "percentile": est.percentile(scores),
        "in_context": in_context,
    })
    out = pd.concat([out, pd.DataFrame(F, columns=est.feature_names)], axis=1)
    return DistinctivenessReport(table=out, estimator=est)


__all__ = [
    "CosineDistinctiveness",
    "DBSCANDistinctiveness",
    "Distinctiveness",
    "DistinctivenessReport",
    "KDEDistinctiveness",
    "KNNDistinctiveness",
    "SCHEMA_VERSION",
    "available_methods",
    "distinctiveness_report",
    "get_distinctiveness",
    "knee_eps",
    "load_source_block",
]

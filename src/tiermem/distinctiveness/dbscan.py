"""``dbscan``, the paper's method: clusters of the context, and how new videos fall into them.

PCA to 10 dims, t-SNE to 3, DBSCAN with eps at the knee of the k-distance curve (`knee_eps`);
an MLP trained on the context (PCA space -> cluster or noise) assigns new videos, since t-SNE
cannot embed unseen points. The features are one-hot over the clusters + noise.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from tiermem.distinctiveness.base import Distinctiveness
from tiermem.distinctiveness.projection import Projection
from tiermem.distinctiveness.registry import register_distinctiveness
from tiermem.errors import TiermemError

logger = logging.getLogger(__name__)

#: Where a noise video is marked: a column of its own, or the last cluster's (the reference's bug).
NOISE_COLUMNS = ("own", "last-cluster")


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


@register_distinctiveness
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

    The reference code's choices are options (`tiermem.presets`, ``m3s-reference``): a fixed
    `eps`, t-SNE on the `whiten`-ed PCA scores with ``tsne_init="random"`` and
    ``tsne_learning_rate=200``, and ``noise_column="last-cluster"``, which reproduces its bug:
    one-hot columns for the clusters only, with noise marked in the last cluster's column
    (``np.eye(k + 1)[label]`` at label -1). The default gives noise a column of its own.
    """

    name = "dbscan"
    _PARAMS = (
        "source",
        "n_components",
        "standardize",
        "tsne_components",
        "perplexity",
        "min_samples",
        "hidden_layer_sizes",
        "max_iter",
        "random_state",
        "eps",
        "whiten",
        "tsne_init",
        "tsne_learning_rate",
        "noise_column",
    )

    def __init__(
        self,
        source: str = "mid",
        n_components: int = 10,
        standardize: bool = True,
        tsne_components: int = 3,
        perplexity: float = 30.0,
        min_samples: int | None = None,
        hidden_layer_sizes: tuple[int, ...] = (64,),
        max_iter: int = 500,
        random_state: int = 0,
        eps: float | None = None,
        whiten: bool = False,
        tsne_init: str = "pca",
        tsne_learning_rate: float | str = "auto",
        noise_column: str = "own",
    ) -> None:
        if noise_column not in NOISE_COLUMNS:
            raise TiermemError(
                f"dbscan: noise_column must be one of {', '.join(NOISE_COLUMNS)}, got {noise_column!r}"
            )
        if eps is not None and not eps > 0:
            raise TiermemError(f"dbscan: eps must be > 0, got {eps}")
        self.eps = eps
        self.whiten = bool(whiten)
        self.tsne_init = tsne_init
        self.tsne_learning_rate = tsne_learning_rate
        self.noise_column = noise_column
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

        self.projection_ = Projection(self.n_components, self.standardize)
        Z = self.projection_.fit_transform(X, self.random_state)
        perplexity = min(float(self.perplexity), (len(Z) - 1) / 3.0)
        self.embedding_ = TSNE(
            n_components=self.tsne_components,
            perplexity=perplexity,
            init=self.tsne_init,
            learning_rate=self.tsne_learning_rate,
            random_state=self.random_state,
        ).fit_transform(self.projection_.whiten(Z) if self.whiten else Z)
        min_samples = self._min_samples()
        self.eps_ = float(self.eps) if self.eps is not None else knee_eps(self.embedding_, min_samples)
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
                hidden_layer_sizes=self.hidden_layer_sizes,
                activation="relu",
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                clf.fit(self.projection_.whiten(Z), target)
            # Not converged after max_iter usually means still fitting the last few border
            # points; the context accuracy below says how well it separates the clusters.
            self.classifier_converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
            self.coefs_ = [w.astype(np.float64) for w in clf.coefs_]
            self.intercepts_ = [b.astype(np.float64) for b in clf.intercepts_]
        else:
            self.coefs_, self.intercepts_ = [], []
        self.classifier_accuracy_ = float(np.mean(self._assign(Z) == target))
        logger.info(
            "dbscan distinctiveness (%s): eps=%.4g min_samples=%d -> %d clusters, noise share %.3f; "
            "classifier accuracy on the context %.3f (converged: %s)",
            self.source,
            self.eps_,
            min_samples,
            self.n_clusters_,
            self.noise_share_,
            self.classifier_accuracy_,
            self.classifier_converged_,
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

    @property
    def _noise_own_column(self) -> bool:
        return self.noise_column == "own" or self.n_clusters_ == 0

    def _one_hot(self, target: np.ndarray) -> np.ndarray:
        if self._noise_own_column:
            return np.eye(self.n_clusters_ + 1)[target]
        return np.eye(self.n_clusters_)[np.minimum(target, self.n_clusters_ - 1)]  # the reference's bug

    def _features(self, X: np.ndarray) -> np.ndarray:
        return self._one_hot(self._assign(self.projection_.transform(X)))

    def _score(self, F: np.ndarray) -> np.ndarray:
        share = self.cluster_share_.copy()
        share[-1] = 0.0  # noise: nobody to blend in with
        return 1.0 - F @ share[: F.shape[1]]

    def _names(self) -> list[str]:
        return [f"cluster_{i}" for i in range(self.n_clusters_)] + (
            ["noise"] if self._noise_own_column else []
        )

    def _summary(self) -> dict[str, Any]:
        return {
            "eps": self.eps_,
            "eps_from": "fixed" if self.eps is not None else "knee",
            "min_samples": self._min_samples(),
            "n_clusters": self.n_clusters_,
            "noise_share": self.noise_share_,
            "classifier_accuracy": self.classifier_accuracy_,
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
        self.projection_ = Projection(self.n_components, self.standardize).load(state)
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


__all__ = ["DBSCANDistinctiveness", "knee_eps"]

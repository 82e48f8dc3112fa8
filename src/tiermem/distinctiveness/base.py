"""The distinctiveness estimator contract, its fitted state, and the registry of methods.

Each method is an estimator with scikit-learn's contract — the constructor only stores
parameters, `fit(X_context)` learns (attributes end in `_`), `transform(X)` scores *new* videos
and never learns — and turns a source block (mid, high, text, ...) into a small named vector
per video.

`fit_transform(X_context)` gives the context's own features *leave-one-out* (a video is never
its own neighbour, never adds its own kernel, never counts in the mean it is compared to), so a
head trained on the context sees the same kind of value a new video gets. Like scikit-learn's
`TargetEncoder`, `fit(X).transform(X)` therefore differs from `fit_transform(X)` on purpose.
For ``dbscan`` the context keeps its DBSCAN labels (the paper's choice).

Every method also gives one scalar `score` (higher = more distinctive) and its `percentile`
within the context's own leave-one-out scores. Fitted state is plain data: `state_dict()` is
numpy arrays plus JSON values, `save()` writes one npz (no pickle) with a schema version.

Methods register themselves with `@register_distinctiveness` under their `name`;
`get_distinctiveness(method, **params)` builds one unfitted, `list_distinctiveness()` names them.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tiermem.errors import ArtifactError, DataMismatchError, TiermemError
from tiermem.registry import Registry

SCHEMA_VERSION = 1


def _as_matrix(X: Any, what: str) -> np.ndarray:
    """Float64 (N, D) copy of `X`; NaN/inf and wrong rank raise DataMismatchError."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise DataMismatchError(f"{what}: expected a 2-D matrix (videos x features), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise DataMismatchError(f"{what}: NaN or inf in {len(rows)} row(s), first at row {rows[0]}")
    return arr


class Distinctiveness:
    """Base class: a context-fitted scorer of how much each video stands out.

    Subclasses set `name`, list their constructor parameters in `_PARAMS`, and implement
    `_fit` (returns the context's leave-one-out features), `_features`, `_score`, `_names`,
    `_state` / `_load`.
    """

    #: The registered name (`get_distinctiveness(name)`), saved as the state's "method".
    name: ClassVar[str] = ""
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
        return [f"{self.name}_{self.source}_{what}" for what in self._names()]

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            from tiermem.distinctiveness.errors import (
                NotFittedError,
            )  # scikit-learn's, so imported when raised

            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(X_context) first")

    def _check_query(self, X: Any) -> np.ndarray:
        self._check_fitted()
        arr = _as_matrix(X, f"{self.name} distinctiveness ({self.source})")
        if arr.shape[1] != self.n_features_in_:
            raise DataMismatchError(
                f"{self.name} distinctiveness on source {self.source!r}: expected "
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
        X = _as_matrix(X_context, f"{self.name} distinctiveness context ({self.source})")
        minimum = self._min_context()
        if len(X) < minimum:
            raise DataMismatchError(
                f"{self.name} distinctiveness context ({self.source}): needs at least {minimum} "
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
        from tiermem.metrics import midrank_percentile

        self._check_fitted()
        return midrank_percentile(self.context_scores_, scores)

    def summary(self) -> dict[str, Any]:
        """What was fitted, JSON-able: for logs, `--json` output and reports."""
        self._check_fitted()
        return {
            "method": self.name,
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
            "method": self.name,
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
        if state.get("method") != self.name:
            raise TiermemError(f"state is for method {state.get('method')!r}, not {self.name!r}")
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
        from tiermem.atomic import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(
            path, lambda f: np.savez(f, __json__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        )
        return path

    @staticmethod
    def load(path: str | os.PathLike[str]) -> "Distinctiveness":
        """Read a file written by `save` (never unpickles) and rebuild the estimator.

        A truncated or overwritten file, a state that is not an object, NaN/inf values, a scale
        that is not positive, or arrays that do not fit together (tried on one probe video) are
        refused in one line naming the file.
        """
        try:
            with np.load(path, allow_pickle=False) as npz:
                state: dict[str, Any] = {k: npz[k] for k in npz.files if k != "__json__"}
                meta = json.loads(str(npz["__json__"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ArtifactError(f"{path}: not a tiermem distinctiveness file ({exc})") from None
        if not isinstance(meta, dict):
            raise ArtifactError(f"{path}: its JSON record is a {type(meta).__name__}, not an object")
        for key, value in state.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ArtifactError(
                    f"{path}: array {key!r} holds {int((~np.isfinite(value)).sum())} NaN/inf values"
                )
            if key.endswith("scale") and value.dtype.kind in "fiu" and (value <= 0).any():
                raise ArtifactError(
                    f"{path}: array {key!r} holds values <= 0, where a scale must be positive"
                )
        state.update(meta)
        try:
            est = Distinctiveness.from_state(state)
            probe = est.transform(np.zeros((1, est.n_features_in_)))
        except TiermemError as exc:
            raise ArtifactError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ArtifactError(
                f"{path}: fitted state does not fit together ({type(exc).__name__}: {exc})"
            ) from None
        if probe.shape != (1, len(est.feature_names)) or not np.isfinite(probe).all():
            raise ArtifactError(f"{path}: fitted state gives no finite {est.name} features")
        return est

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


# -- the registry of methods (listing names imports no method, nor scikit-learn) ------------------

_METHODS: Registry[type[Distinctiveness]] = Registry(
    "distinctiveness method",
    modules=[f"tiermem.distinctiveness.{module}" for module in ("cosine", "dbscan", "kde", "knn")],
    decorator_name="register_distinctiveness",
)
#: Class decorator: make a method available as `get_distinctiveness(cls.name)`.
register_distinctiveness = _METHODS.decorator()


def list_distinctiveness() -> list[str]:
    """Names accepted by `get_distinctiveness`, sorted."""
    return _METHODS.names()


def get_distinctiveness(method: str, **params: Any) -> Distinctiveness:
    """Build the estimator registered as `method` with its parameters (unfitted)."""
    return _METHODS.build(method, **params)


__all__ = [
    "SCHEMA_VERSION",
    "Distinctiveness",
    "get_distinctiveness",
    "list_distinctiveness",
    "register_distinctiveness",
]

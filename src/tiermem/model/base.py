"""The contract every memorability head follows, its registry, and its saved form.

Heads follow scikit-learn's habits: the constructor only stores parameters, ``fit`` learns
(attributes ending in ``_``), ``predict`` never learns. Each standardises every input column
with statistics of the training split (`tiermem.standardise.Standardiser`), stored as data.
A fitted head round-trips through ``state_dict()`` (numpy arrays plus JSON-able values) and
through a directory::

    head = get_head("m3s", dropout=0.1, train={"loss": "mse_to_spearman"})
    head.fit(X_train, y_train, layout=joined.layout)
    head.save("model/")             # head.json + weights.safetensors, no pickle
    load_head("model/").predict(X)  # identical predictions

`layout` records which blocks (names and columns, in order) the columns of X came from, so
a later caller can rebuild X from tables or extractors and be told when they do not match.
Heads register with `@register_head` (`tiermem.model.registry`); `get_head(kind, **params)`
builds one, `list_heads()` names them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tiermem.blocks import BlockLayout
from tiermem.errors import DataMismatchError, TiermemError
from tiermem.model.registry import get_head_class, list_heads
from tiermem.runtime import library_versions
from tiermem.atomic import write_dir_atomic

SCHEMA_VERSION = 1
CONFIG_FILE = "head.json"
WEIGHTS_FILE = "weights.safetensors"


class Head:
    """Base of every head: parameters, fitted layout, input checks, save/load."""

    kind: ClassVar[str] = ""

    # -- parameters ------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as JSON-able values."""
        raise NotImplementedError

    def check_params(self) -> None:
        """Refuse settings that cannot train; called before any extraction starts."""

    # -- learning / inference --------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        *,
        layout: Sequence[BlockLayout] | None = None,
        progress: Any = None,
    ) -> "Head":
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "layout_")

    def _check_fit_inputs(self, X: np.ndarray, y: np.ndarray, layout: Sequence[BlockLayout] | None) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64).ravel()
        if X.ndim != 2 or X.shape[0] != y.size:
            raise DataMismatchError(f"X has shape {X.shape} but there are {y.size} labels")
        if X.shape[0] < 3:
            raise DataMismatchError(f"need at least 3 training videos, got {X.shape[0]}")
        if not np.isfinite(X).all() or not np.isfinite(y).all():
            raise DataMismatchError("training features or labels contain NaN/inf")
        if layout is None:
            layout = [BlockLayout("features", [f"x{i}" for i in range(X.shape[1])])]
        width = sum(len(b.feature_names) for b in layout)
        if width != X.shape[1]:
            raise DataMismatchError(f"layout describes {width} columns but X has {X.shape[1]}")
        self.layout_ = list(layout)
        self.n_features_in_ = int(X.shape[1])
        return X, y

    def _check_predict_input(self, X: np.ndarray) -> np.ndarray:
        if not self.is_fitted:
            raise TiermemError(f"this {type(self).__name__} is not fitted yet")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise DataMismatchError(
                f"X has shape {X.shape}; the head was trained on {self.n_features_in_} features "
                f"({', '.join(b.name for b in self.layout_)})"
            )
        return X

    # -- fitted state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Fitted state: numpy arrays (weights, statistics) and JSON-able values."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> "Head":
        raise NotImplementedError

    @classmethod
    def from_state(cls, params: dict[str, Any], state: dict[str, Any]) -> "Head":
        """Rebuild a fitted head from `get_params()` and `state_dict()` without refitting."""
        return cls(**params).load_state_dict(state)

    def _layout_state(self) -> dict[str, Any]:
        return {"layout": [b.to_dict() for b in self.layout_]}

    def _load_layout(self, state: dict[str, Any]) -> None:
        self.layout_ = [BlockLayout.from_dict(d) for d in state["layout"]]
        self.n_features_in_ = sum(len(b.feature_names) for b in self.layout_)

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the fitted head to `directory` (head.json + weights.safetensors), atomically."""
        if not self.is_fitted:
            raise TiermemError(f"cannot save an unfitted {type(self).__name__}")
        from safetensors.numpy import save_file

        directory = Path(directory)
        state = self.state_dict()
        arrays = {k: np.ascontiguousarray(v) for k, v in state.items() if isinstance(v, np.ndarray)}
        values = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        doc = {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "params": self.get_params(),
            "state": values,
            "arrays": sorted(arrays),
            "versions": library_versions(),
        }
        if directory.exists() and not (directory / CONFIG_FILE).is_file() and any(directory.iterdir()):
            raise TiermemError(f"{directory}: exists and is not a tiermem model directory; refusing to overwrite")

        def write(tmp: Path) -> None:
            save_file(arrays, str(tmp / WEIGHTS_FILE), metadata={"schema_version": str(SCHEMA_VERSION)})
            (tmp / CONFIG_FILE).write_text(json.dumps(doc, indent=1, allow_nan=True) + "\n")

        return write_dir_atomic(directory, write)

    @classmethod
    def load(cls, directory: str | Path) -> "Head":
        """Read a head written by `save` (whatever its kind); never unpickles."""
        return load_head(directory)


def load_head(directory: str | Path) -> Head:
    """Read a head directory written by `Head.save`: JSON + safetensors only, nothing executed."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    directory = Path(directory)
    cfg, weights = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for f in (cfg, weights):
        if not f.is_file():
            raise TiermemError(f"{directory}: not a tiermem model directory (no {f.name})")
    try:
        doc = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TiermemError(f"{cfg}: not valid JSON ({exc})") from None
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise TiermemError(f"{cfg}: model schema version {version!r}; this tiermem reads {SCHEMA_VERSION}")
    kind = doc.get("kind")
    if kind not in list_heads():
        raise TiermemError(f"{cfg}: unknown head kind {kind!r}")
    try:
        arrays = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise TiermemError(f"{weights}: not a readable safetensors file ({exc})") from None
    missing = [k for k in doc.get("arrays", []) if k not in arrays]
    if missing:
        raise TiermemError(f"{weights}: missing arrays {', '.join(missing)}")
    try:
        return get_head_class(kind).from_state(doc["params"], {**doc["state"], **arrays})
    except (KeyError, TypeError, ValueError) as exc:
        raise TiermemError(f"{cfg}: malformed model state ({exc!r})") from None


__all__ = ["CONFIG_FILE", "Head", "SCHEMA_VERSION", "WEIGHTS_FILE", "load_head"]

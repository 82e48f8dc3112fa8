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
Targets outside [0, 1] are learnt through a `TargetScaling` saved with the head, and
predictions come back in the target's units. Loading checks every array's shape and values
against the head's layout and architecture, naming the file that does not fit.
Heads register with `@register_head` (defined here, imported from `tiermem.model.registry`);
`get_head(kind, **params)` builds one, `list_heads()` names them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tiermem.atomic import before_loading, write_dir_atomic
from tiermem.blocks import BlockLayout
from tiermem.errors import ArtifactError, DataMismatchError, TiermemError
from tiermem.model.scaling import TargetScaling
from tiermem.registry import Registry
from tiermem.run import ProgressCallback
from tiermem.runtime import library_versions
from tiermem.standardise import Standardiser

SCHEMA_VERSION = 1
CONFIG_FILE = "head.json"
WEIGHTS_FILE = "weights.safetensors"
SCALING_KEY = "target_scaling"


class StateError(ArtifactError):
    """One entry of a head's fitted state does not fit the head; `key` names the entry."""

    def __init__(self, key: str, cause: str) -> None:
        self.key = key
        super().__init__(f"{key!r}: {cause}")


def state_array(
    state: dict[str, Any], key: str, shape: tuple[int, ...], *, positive: bool = False
) -> np.ndarray:
    """`state[key]` as float64, refused unless it has `shape` and finite (with `positive`: > 0) values."""
    a = np.asarray(state[key], dtype=np.float64)
    if a.shape != tuple(shape):
        raise StateError(key, f"expected shape {tuple(shape)}, found {a.shape}")
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise StateError(key, f"{bad} NaN/inf values")
    if positive and (a <= 0).any():
        raise StateError(key, f"{int((a <= 0).sum())} values <= 0, where a scale must be positive")
    return a


def state_number(state: dict[str, Any], key: str) -> float:
    """`state[key]` as a finite float."""
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise StateError(key, f"expected a finite number, found {value!r}")
    return float(value)


class Head:
    """Base of every head: parameters, fitted layout, input checks, save/load."""

    #: The registered name (`get_head(name)`), saved as the head file's "kind".
    name: ClassVar[str] = ""

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
        progress: ProgressCallback | None = None,
        watch: np.ndarray | None = None,
    ) -> "Head":
        """Learn from (X, y); heads trained by epochs tell `progress` of each. `watch`: rows of features a head trained by epochs scores after
        every epoch without choosing anything by them (`watched_`: members x epochs x rows,
        with `best_epochs_` the epochs kept); heads without epochs ignore it."""
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores in the target's units; a score that is not finite means a damaged model."""
        X = self._check_predict_input(X)
        out = self.target_scaling_.inverse(self._predict(X))
        bad = ~np.isfinite(out)
        if bad.any():
            name = getattr(self, "source_", f"this {self.name} head")
            raise ArtifactError(
                f"{name}: {int(bad.sum())} of {out.size} scores are NaN/inf although the features are "
                "finite: the model's weights are damaged"
            )
        return out

    def _predict(self, X: np.ndarray) -> np.ndarray:
        """Scores in the head's [0, 1] units of checked inputs."""
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "layout_")

    def _check_fit_inputs(
        self, X: np.ndarray, y: np.ndarray, layout: Sequence[BlockLayout] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        self.check_params()  # settings that cannot train are refused before any work, as a saved head's are on load
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64).ravel()
        if X.ndim != 2 or X.shape[0] != y.size:
            raise DataMismatchError(f"X has shape {X.shape} but there are {y.size} labels")
        if X.shape[0] < 3:
            raise DataMismatchError(f"need at least 3 training videos, got {X.shape[0]}")
        if not np.isfinite(X).all() or not np.isfinite(y).all():
            raise DataMismatchError("training features or labels contain NaN/inf")
        self.target_scaling_ = TargetScaling.fit(y)
        if layout is None:
            layout = [BlockLayout("features", [f"x{i}" for i in range(X.shape[1])])]
        width = sum(len(b.feature_names) for b in layout)
        if width != X.shape[1]:
            raise DataMismatchError(f"layout describes {width} columns but X has {X.shape[1]}")
        self.layout_ = list(layout)
        self.n_features_in_ = int(X.shape[1])
        return X, self.target_scaling_.transform(y)

    def _check_predict_input(self, X: np.ndarray) -> np.ndarray:
        if not self.is_fitted:
            raise TiermemError(f"this {type(self).__name__} is not fitted yet")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise DataMismatchError(
                f"X has shape {X.shape}; the head was trained on {self.n_features_in_} features "
                f"({', '.join(b.name for b in self.layout_)})"
            )
        if not np.isfinite(X).all():
            raise DataMismatchError(
                f"the features to score hold {int((~np.isfinite(X)).sum())} NaN/inf values"
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

    def _common_state(self) -> dict[str, Any]:
        """The layout, and the target scaling unless it is the identity (older heads have none)."""
        state: dict[str, Any] = {"layout": [b.to_dict() for b in self.layout_]}
        if not self.target_scaling_.is_identity:
            state[SCALING_KEY] = self.target_scaling_.to_dict()
        return state

    def _load_common(self, state: dict[str, Any]) -> None:
        self.layout_ = [BlockLayout.from_dict(d) for d in state["layout"]]
        self.n_features_in_ = sum(len(b.feature_names) for b in self.layout_)
        if self.n_features_in_ < 1:
            raise StateError("layout", "names no features")
        self.target_scaling_ = TargetScaling()
        if SCALING_KEY in state:
            try:
                self.target_scaling_ = TargetScaling.from_dict(state[SCALING_KEY])
            except TiermemError as exc:
                raise StateError(SCALING_KEY, str(exc)) from None

    def _load_normaliser(self, state: dict[str, Any]) -> Standardiser:
        shape = (self.n_features_in_,)
        return Standardiser.from_state(
            {
                "mean": state_array(state, "normaliser.mean", shape),
                "scale": state_array(state, "normaliser.scale", shape, positive=True),
            }
        )

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
            "kind": self.name,
            "params": self.get_params(),
            "state": values,
            "arrays": sorted(arrays),
            "versions": library_versions(),
            # how many labelled videos it learnt from, and how many measured it (`train`)
            "provenance": getattr(self, "provenance_", None),
        }

        def write(tmp: Path) -> None:
            save_file(arrays, str(tmp / WEIGHTS_FILE), metadata={"schema_version": str(SCHEMA_VERSION)})
            (tmp / CONFIG_FILE).write_text(json.dumps(doc, indent=1, allow_nan=True) + "\n")

        return write_dir_atomic(directory, write, marker=CONFIG_FILE)

    @classmethod
    def load(cls, directory: str | Path) -> "Head":
        """Read a head written by `save` (whatever its kind); never unpickles."""
        return load_head(directory)


# -- the registry of heads (listing imports no head) --------------------------------------------

_HEADS: Registry[type[Head]] = Registry(
    "head",
    modules=[
        "tiermem.model.ridge",
        "tiermem.model.kernel_ridge",
        "tiermem.model.m3s",
        "tiermem.model.ensemble",
        "tiermem.model.auto",
    ],
    decorator_name="register_head",
)
#: Class decorator: register a head under its `name`.
register_head = _HEADS.decorator()


def get_head(kind: str, **params: Any) -> Head:
    """Build an unfitted head by kind (``"m3s"``, ``"ridge"``, ``"kernel-ridge"``, ``"ensemble"`` or
    ``"auto"``) with its parameters."""
    return _HEADS.build(kind, **params)


def get_head_class(kind: str) -> type[Head]:
    """The class registered as `kind` (to rebuild a saved head from its state)."""
    return _HEADS.get(kind)


def list_heads() -> list[str]:
    """Names accepted by `get_head`."""
    return _HEADS.names()


# -- a saved head ---------------------------------------------------------------------------------


def load_head(directory: str | Path) -> Head:
    """Read a head directory written by `Head.save`: JSON + safetensors only, nothing executed.

    Every array must have the shape the head's layout and architecture give it and finite
    values (scales > 0); anything else is refused in one line naming the file.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    directory = Path(directory)
    before_loading(directory, CONFIG_FILE)
    cfg, weights = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for f in (cfg, weights):
        if not f.is_file():
            raise TiermemError(f"{directory}: not a tiermem model directory (no {f.name})")
    try:
        doc = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{cfg}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{cfg}: expected a JSON object, found {type(doc).__name__}")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise TiermemError(f"{cfg}: model schema version {version!r}; this tiermem reads {SCHEMA_VERSION}")
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in list_heads():
        raise ArtifactError(f"{cfg}: unknown head kind {kind!r}")
    for key in ("params", "state"):
        if not isinstance(doc.get(key), dict):
            raise ArtifactError(f"{cfg}: {key!r} must be a JSON object, found {type(doc.get(key)).__name__}")
    try:
        arrays = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{weights}: not a readable safetensors file ({exc})") from None
    missing = [k for k in doc.get("arrays", []) if k not in arrays]
    if missing:
        raise ArtifactError(f"{weights}: missing arrays {', '.join(map(str, missing))}")
    try:
        head = get_head_class(kind)(**doc["params"])
        head.check_params()
        head.load_state_dict({**doc["state"], **arrays})
    except StateError as exc:
        raise ArtifactError(f"{weights if exc.key in arrays else cfg}: {exc}") from None
    except TiermemError as exc:
        raise ArtifactError(f"{cfg}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{cfg}: malformed model state ({exc!r})") from None
    head.source_ = str(directory)
    provenance = doc.get("provenance")
    if isinstance(provenance, dict):
        head.provenance_ = provenance
    return head


__all__ = [
    "CONFIG_FILE",
    "Head",
    "SCHEMA_VERSION",
    "StateError",
    "WEIGHTS_FILE",
    "get_head",
    "get_head_class",
    "list_heads",
    "load_head",
    "register_head",
    "state_array",
    "state_number",
]

"""Memorability heads: the M3-S MLP and the ridge baseline, behind one estimator contract.

Both follow scikit-learn's habits: the constructor only stores parameters, ``fit`` learns
(attributes ending in ``_``), ``predict`` never learns. Both standardise every input column
with statistics of the training split (per column, so every block is standardised on its
own), stored as data. A fitted head round-trips through ``state_dict()`` (numpy arrays plus
JSON-able values) and through a directory::

    head = M3SHead(hidden=(512, 64), dropout=0.1, train=TrainConfig(loss="mse_to_spearman"))
    head.fit(X_train, y_train, X_val, y_val, layout=joined.layout)
    head.save("model/")            # head.json + weights.safetensors, no pickle
    load_head("model/").predict(X)  # identical predictions

`layout` records which blocks (names and columns, in order) the columns of X came from, so
a later caller can rebuild X from tables or extractors and be told when they do not match.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tiermem.blocks import BlockLayout
from tiermem.errors import DataMismatchError, TiermemError
from tiermem.model.train import EpochLog, TrainConfig

SCHEMA_VERSION = 1
CONFIG_FILE = "head.json"
WEIGHTS_FILE = "weights.safetensors"


class Standardiser:
    """Per-column z-scores with training-split statistics; constant columns pass through centred."""

    def fit(self, X: np.ndarray) -> "Standardiser":
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_).astype(np.float32)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_.astype(np.float64), "scale": self.scale_.astype(np.float64)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> "Standardiser":
        s = cls()
        s.mean_ = np.asarray(state["mean"], dtype=np.float64)
        s.scale_ = np.asarray(state["scale"], dtype=np.float64)
        return s


class Head:
    """Base of every head: parameters, fitted layout, input checks, save/load."""

    kind: ClassVar[str] = ""

    # -- parameters ------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as JSON-able values."""
        raise NotImplementedError

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
            "versions": _versions(),
        }
        if directory.exists() and not (directory / CONFIG_FILE).is_file() and any(directory.iterdir()):
            raise TiermemError(f"{directory}: exists and is not a tiermem model directory; refusing to overwrite")
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            save_file(arrays, str(tmp / WEIGHTS_FILE), metadata={"schema_version": str(SCHEMA_VERSION)})
            (tmp / CONFIG_FILE).write_text(json.dumps(doc, indent=1, allow_nan=True) + "\n")
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
                os.replace(directory, old)
                os.replace(tmp, directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Head":
        """Read a head written by `save` (whatever its kind); never unpickles."""
        return load_head(directory)


def _versions() -> dict[str, str]:
    import safetensors
    import sklearn
    import torch

    from tiermem import __version__

    return {
        "tiermem": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "safetensors": safetensors.__version__,
    }


# -- ridge ----------------------------------------------------------------------------------


def default_alphas() -> np.ndarray:
    """Log grid 1e-3 .. 1e6: wide enough that 80-1000 standardised features never hit an edge."""
    return np.logspace(-3, 6, 37)


class RidgeHead(Head):
    """Closed-form ridge regression on standardised features; alpha by efficient leave-one-out CV.

    The baseline every report shows beside the M3-S head. Predictions are clipped to [0, 1]
    (memorability is a probability); clipping never changes the order of in-range scores.
    """

    kind = "ridge"

    def __init__(self, alphas: Sequence[float] | None = None, clip: bool = True) -> None:
        self.alphas = None if alphas is None else [float(a) for a in alphas]
        self.clip = clip

    def get_params(self) -> dict[str, Any]:
        return {"alphas": self.alphas, "clip": self.clip}

    def fit(self, X, y, X_val=None, y_val=None, *, layout=None, progress=None) -> "RidgeHead":
        """Fit on (X, y); validation data is not needed (alpha comes from LOO-CV on X)."""
        from sklearn.linear_model import RidgeCV

        X, y = self._check_fit_inputs(X, y, layout)
        self.normaliser_ = Standardiser().fit(X)
        alphas = np.asarray(self.alphas if self.alphas is not None else default_alphas())
        model = RidgeCV(alphas=alphas).fit(self.normaliser_.transform(X).astype(np.float64), y)
        self.coef_ = np.asarray(model.coef_, dtype=np.float64)
        self.intercept_ = float(model.intercept_)
        self.alpha_ = float(model.alpha_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict_input(X)
        out = self.normaliser_.transform(X).astype(np.float64) @ self.coef_ + self.intercept_
        return np.clip(out, 0.0, 1.0) if self.clip else out

    def state_dict(self) -> dict[str, Any]:
        return {
            "normaliser.mean": self.normaliser_.mean_,
            "normaliser.scale": self.normaliser_.scale_,
            "ridge.coef": self.coef_,
            "ridge.intercept": self.intercept_,
            "ridge.alpha": self.alpha_,
            **self._layout_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> "RidgeHead":
        self._load_layout(state)
        self.normaliser_ = Standardiser.from_state(
            {"mean": state["normaliser.mean"], "scale": state["normaliser.scale"]}
        )
        self.coef_ = np.asarray(state["ridge.coef"], dtype=np.float64)
        self.intercept_ = float(state["ridge.intercept"])
        self.alpha_ = float(state["ridge.alpha"])
        return self


# -- M3-S MLP -------------------------------------------------------------------------------


class M3SHead(Head):
    """The M3-S head: MLP (hidden [512, 64], Mish, sigmoid output) on standardised blocks.

    `dropout` and `train.weight_decay` are the regularisers that let an MLP compete with
    ridge on a few thousand videos. ``train.ensemble = K`` trains K seeds and averages them;
    each member picks its best epoch on its own `early_stopping` share of the training
    videos, so together the members learn from every video (on 354-video subsets of
    VideoMem and Memento10k this alone was worth +0.01 to +0.02 Spearman).
    """

    kind = "m3s"

    def __init__(
        self,
        hidden: Sequence[int] = (512, 64),
        dropout: float = 0.0,
        train: TrainConfig | dict[str, Any] | None = None,
        early_stopping: float = 0.1,
    ) -> None:
        self.hidden = tuple(int(h) for h in hidden)
        self.dropout = float(dropout)
        self.train = TrainConfig.from_dict(train) if isinstance(train, dict) else (train or TrainConfig())
        self.early_stopping = float(early_stopping)

    def get_params(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "dropout": self.dropout, "train": self.train.to_dict(),
                "early_stopping": self.early_stopping}

    def fit(self, X, y, X_val=None, y_val=None, *, layout=None, progress=None) -> "M3SHead":
        """Train `train.ensemble` nets, each keeping its best epoch on an early-stopping split.

        That split is (X_val, y_val) when given; otherwise member k holds out its own seeded
        `early_stopping` share of the training videos (seed + 1 + k), so a validation set the
        caller reports on never picks the epoch (which would make its figure optimistic).
        `early_stopping=0` trains all epochs on every video.
        """
        from tiermem.model.experiment import split_train_val
        from tiermem.model.train import train_mlp

        X, y = self._check_fit_inputs(X, y, layout)
        self.normaliser_ = Standardiser().fit(X)  # unsupervised: every training video's features
        Xs = self.normaliser_.transform(X)
        given_val = X_val is not None and y_val is not None
        if given_val:
            Xv = self.normaliser_.transform(self._check_predict_input(X_val))
            yv = np.asarray(y_val, dtype=np.float64).ravel()
            if yv.size != Xv.shape[0]:
                raise DataMismatchError(f"X_val has {Xv.shape[0]} rows but there are {yv.size} validation labels")
        inner = not given_val and self.train.keep_best and round(len(y) * self.early_stopping) >= 3
        self.members_, self.history_, self.best_epochs_ = [], [], []
        for k in range(self.train.ensemble):
            seed = self.train.seed + k
            if inner:
                tr, es = split_train_val(len(y), self.early_stopping, seed + 1)
                Xk, yk, Xv, yv = Xs[tr], y[tr], Xs[es], y[es]
            elif not given_val:
                Xk, yk, Xv, yv = Xs, y, None, None
            else:
                Xk, yk = Xs, y
            net, log, best = train_mlp(
                Xk, yk, Xv, yv, hidden=self.hidden, dropout=self.dropout,
                config=self.train, seed=seed, progress=progress,
            )
            self.members_.append(net)
            self.history_.append(log)
            self.best_epochs_.append(best)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        from tiermem.model.train import predict_mlp

        X = self._check_predict_input(X)
        Xs = self.normaliser_.transform(X)
        return np.mean([predict_mlp(net, Xs) for net in self.members_], axis=0)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "normaliser.mean": self.normaliser_.mean_,
            "normaliser.scale": self.normaliser_.scale_,
            "best_epochs": list(self.best_epochs_),
            "history": [[vars(e) for e in log] for log in self.history_],
            **self._layout_state(),
        }
        for k, net in enumerate(self.members_):
            for name, t in net.state_dict().items():
                state[f"member{k}.{name}"] = t.detach().cpu().numpy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> "M3SHead":
        import torch

        from tiermem.model.train import build_mlp

        self._load_layout(state)
        self.normaliser_ = Standardiser.from_state(
            {"mean": state["normaliser.mean"], "scale": state["normaliser.scale"]}
        )
        self.best_epochs_ = [int(e) for e in state["best_epochs"]]
        self.history_ = [[EpochLog(**e) for e in log] for log in state["history"]]
        self.members_ = []
        for k in range(len(self.best_epochs_)):
            prefix = f"member{k}."
            weights = {n[len(prefix):]: torch.from_numpy(np.array(v)) for n, v in state.items() if n.startswith(prefix)}
            net = build_mlp(self.n_features_in_, self.hidden, self.dropout)
            try:
                net.load_state_dict(weights, strict=True)
            except RuntimeError as exc:
                raise TiermemError(f"ensemble member {k}: weights do not fit the architecture ({str(exc).splitlines()[0]})") from None
            net.eval()
            self.members_.append(net)
        return self


HEADS: dict[str, type[Head]] = {RidgeHead.kind: RidgeHead, M3SHead.kind: M3SHead}


def make_head(kind: str, **params: Any) -> Head:
    """Build an unfitted head by kind (``"m3s"`` or ``"ridge"``)."""
    try:
        return HEADS[kind](**params)
    except KeyError:
        raise TiermemError(f"unknown head {kind!r}; available: {', '.join(HEADS)}") from None


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
    if kind not in HEADS:
        raise TiermemError(f"{cfg}: unknown head kind {kind!r}")
    try:
        arrays = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise TiermemError(f"{weights}: not a readable safetensors file ({exc})") from None
    missing = [k for k in doc.get("arrays", []) if k not in arrays]
    if missing:
        raise TiermemError(f"{weights}: missing arrays {', '.join(missing)}")
    try:
        return HEADS[kind].from_state(doc["params"], {**doc["state"], **arrays})
    except (KeyError, TypeError, ValueError) as exc:
        raise TiermemError(f"{cfg}: malformed model state ({exc!r})") from None


__all__ = [
    "HEADS",
    "Head",
    "M3SHead",
    "RidgeHead",
    "SCHEMA_VERSION",
    "Standardiser",
    "default_alphas",
    "load_head",
    "make_head",
]

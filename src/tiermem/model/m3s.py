"""The M3-S head: an MLP (hidden [512, 64], Mish, sigmoid output) on standardised blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.model.base import Head, StateError, state_array
from tiermem.model.config import EpochLog, TrainConfig
from tiermem.model.registry import register_head
from tiermem.splits import split_train_val
from tiermem.standardise import Standardiser


@register_head
class M3SHead(Head):
    """The M3-S head: MLP (hidden [512, 64], Mish, sigmoid output) on standardised blocks.

    `dropout` and `train.weight_decay` are the regularisers that let an MLP compete with
    ridge on a few thousand videos. ``train.ensemble = K`` trains K seeds and averages them;
    each member picks its best epoch on its own `early_stopping` share of the training
    videos, so together the members learn from every video (on 354-video subsets of
    VideoMem and Memento10k this alone was worth +0.01 to +0.02 Spearman).

    `standardise` names the blocks whose columns are z-scored with the training statistics
    (None: every block); the others go in raw, as the reference implementation feeds its
    backbone embeddings and cluster one-hots.
    """

    name = "m3s"
    #: Where the nets train ("cpu" or "cuda"); a runtime choice, not a saved parameter.
    device: str = "cpu"

    def __init__(
        self,
        hidden: Sequence[int] = (512, 64),
        dropout: float = 0.0,
        train: TrainConfig | dict[str, Any] | None = None,
        early_stopping: float = 0.1,
        standardise: Sequence[str] | None = None,
    ) -> None:
        self.standardise = None if standardise is None else [str(b) for b in standardise]
        self.hidden = tuple(int(h) for h in hidden)
        self.dropout = float(dropout)
        self.train = TrainConfig.from_dict(train) if isinstance(train, dict) else (train or TrainConfig())
        self.early_stopping = float(early_stopping)

    def get_params(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "train": self.train.to_dict(),
            "early_stopping": self.early_stopping,
            "standardise": self.standardise,
        }

    def check_params(self) -> None:
        self.train.validate()
        if not 0.0 <= self.early_stopping < 1.0:
            raise TiermemError(f"--early-stopping must be in [0, 1), got {self.early_stopping}")
        if not 0.0 <= self.dropout < 1.0:
            raise TiermemError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise TiermemError(
                f"--hidden {','.join(map(str, self.hidden))}: expected positive layer sizes like 512,64"
            )

    def fit(self, X, y, X_val=None, y_val=None, *, layout=None, progress=None, watch=None) -> "M3SHead":
        """Train `train.ensemble` nets, each keeping its best epoch on an early-stopping split.

        That split is (X_val, y_val) when given; otherwise member k holds out its own seeded
        `early_stopping` share of the training videos (seed + 1 + k), so a validation set the
        caller reports on never picks the epoch (which would make its figure optimistic).
        `early_stopping=0` trains all epochs on every video. `watch` (rows of features) is
        scored after every epoch of every member, choosing nothing: `watched_` holds the
        scores, shape (members, epochs, rows), for `tiermem.model.protocols`.
        """
        from tiermem.model.train import train_mlp

        X, y = self._check_fit_inputs(X, y, layout)
        # Unsupervised: every training video's features, of the blocks to standardise.
        self.normaliser_ = Standardiser().fit(X, self._standardised_columns())
        Xs = self.normaliser_.transform(X).astype(np.float32)
        Xw = (
            None
            if watch is None
            else self.normaliser_.transform(self._check_predict_input(watch)).astype(np.float32)
        )
        given_val = X_val is not None and y_val is not None
        if given_val:
            Xv = self.normaliser_.transform(self._check_predict_input(X_val)).astype(np.float32)
            yv = self.target_scaling_.transform(np.asarray(y_val, dtype=np.float64).ravel())
            if yv.size != Xv.shape[0]:
                raise DataMismatchError(
                    f"X_val has {Xv.shape[0]} rows but there are {yv.size} validation labels"
                )
        inner = not given_val and self.train.keep_best and round(len(y) * self.early_stopping) >= 3
        self.members_, self.history_, self.best_epochs_ = [], [], []
        watched = []
        for k in range(self.train.ensemble):
            seed = self.train.seed + k
            if inner:
                tr, es = split_train_val(len(y), self.early_stopping, seed + 1)
                Xk, yk, Xv, yv = Xs[tr], y[tr], Xs[es], y[es]
            elif not given_val:
                Xk, yk, Xv, yv = Xs, y, None, None
            else:
                Xk, yk = Xs, y
            net, log, best, scores = train_mlp(
                Xk,
                yk,
                Xv,
                yv,
                hidden=self.hidden,
                dropout=self.dropout,
                config=self.train,
                seed=seed,
                progress=progress,
                device=self.device,
                watch=Xw,
            )
            self.members_.append(net)
            self.history_.append(log)
            self.best_epochs_.append(best)
            watched.append(scores)
        if watch is not None:
            self.watched_ = self.target_scaling_.inverse(np.stack(watched))
        return self

    def _standardised_columns(self) -> np.ndarray | None:
        """Boolean mask of the columns to z-score (None: all of them)."""
        if self.standardise is None:
            return None
        return np.concatenate(
            [np.full(len(b.feature_names), b.name in self.standardise) for b in self.layout_]
        )

    def _predict(self, X: np.ndarray) -> np.ndarray:
        from tiermem.model.train import predict_mlp

        Xs = self.normaliser_.transform(X).astype(np.float32)
        return np.mean([predict_mlp(net, Xs) for net in self.members_], axis=0)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "normaliser.mean": self.normaliser_.mean_,
            "normaliser.scale": self.normaliser_.scale_,
            "best_epochs": list(self.best_epochs_),
            "history": [[vars(e) for e in log] for log in self.history_],
            **self._common_state(),
        }
        for k, net in enumerate(self.members_):
            for name, t in net.state_dict().items():
                state[f"member{k}.{name}"] = t.detach().cpu().numpy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> "M3SHead":
        """Restore a fitted head; every member's weights must have the shapes of the
        architecture (`hidden`, the layout's feature count) and finite values."""
        import torch

        from tiermem.model.train import build_mlp

        self._load_common(state)
        self.normaliser_ = self._load_normaliser(state)
        self.best_epochs_ = [int(e) for e in state["best_epochs"]]
        if not self.best_epochs_:
            raise StateError("best_epochs", "names no ensemble member")
        self.history_ = [[EpochLog(**e) for e in log] for log in state["history"]]
        members = [f"member{k}." for k in range(len(self.best_epochs_))]
        stray = [n for n in state if n.startswith("member") and not n.startswith(tuple(members))]
        if stray:
            raise StateError(stray[0], f"weights of no ensemble member (the head has {len(members)})")
        self.members_ = []
        for prefix in members:
            net = build_mlp(self.n_features_in_, self.hidden, self.dropout)
            expected = {prefix + n: tuple(t.shape) for n, t in net.state_dict().items()}
            unknown = [n for n in state if n.startswith(prefix) and n not in expected]
            if unknown:
                raise StateError(unknown[0], f"not a weight of the {list(self.hidden)} architecture")
            absent = [n for n in expected if n not in state]
            if absent:
                raise StateError(absent[0], "missing")
            weights = {
                n[len(prefix) :]: torch.from_numpy(state_array(state, n, shape).astype(np.float32))
                for n, shape in expected.items()
            }
            net.load_state_dict(weights, strict=True)
            net.eval()
            self.members_.append(net)
        return self


__all__ = ["M3SHead"]

"""The auto head: ridge or M3-S, whichever ranks held-out training videos better.

On a few hundred noisy videos the M3-S MLP can trail the closed-form ridge (TRECVid 2020:
0.203 against 0.221 Spearman, mean of 5 partitions); on thousands it leads. The auto head
decides per training set, on the training videos only: each candidate is fitted on k-1 of k
seeded folds and scores the held-out fold; the candidate whose out-of-fold scores have the
higher Spearman with the targets is refitted on every training video and kept. A validation
set given to `fit` is never looked at, so a figure reported on it stays unbiased.

It is the default head. From `cv_below` training videos on (2000 by default) it keeps M3-S
without cross-validating: there the MLP leads on every set measured (Memento10k, VideoMem),
and five extra fits would only cost time.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from tiermem.errors import TiermemError
from tiermem.model.base import Head, StateError
from tiermem.model.registry import get_head, get_head_class, register_head

#: The heads the auto head chooses between, in the order ties are broken.
CANDIDATES = ("ridge", "m3s")
#: Training sets this large keep M3-S without cross-validation.
CV_BELOW = 2000


@register_head
class AutoHead(Head):
    """Ridge or M3-S by `folds`-fold cross-validation on the training videos (seed `seed`);
    M3-S outright from `cv_below` training videos on."""

    name = "auto"
    #: Where the M3-S candidate trains ("cpu" or "cuda"); a runtime choice, not a saved parameter.
    device: str = "cpu"

    def __init__(
        self, m3s: dict[str, Any] | None = None, folds: int = 5, seed: int = 0, cv_below: int = CV_BELOW
    ) -> None:
        self.m3s = dict(m3s or {})  # parameters of the M3-S candidate (`get_head("m3s", **m3s)`)
        self.folds = int(folds)
        self.seed = int(seed)
        self.cv_below = int(cv_below)

    def get_params(self) -> dict[str, Any]:
        return {"m3s": self.m3s, "folds": self.folds, "seed": self.seed, "cv_below": self.cv_below}

    def check_params(self) -> None:
        if self.folds < 2:
            raise TiermemError(f"auto head: folds must be at least 2, got {self.folds}")
        if self.cv_below < 0:
            raise TiermemError(f"auto head: cv_below must be at least 0, got {self.cv_below}")
        get_head("m3s", **self.m3s).check_params()

    def _candidate(self, kind: str) -> Head:
        head = get_head(kind, **(self.m3s if kind == "m3s" else {}))
        if kind == "m3s":
            head.device = self.device  # type: ignore[attr-defined]
        return head

    def fit(self, X, y, X_val=None, y_val=None, *, layout=None, progress=None, watch=None) -> "AutoHead":
        """Choose by cross-validation on (X, y), then refit the choice on all of it (`watch`: see
        `Head.fit`; only the final fit watches)."""
        X, _ = self._check_fit_inputs(X, y, layout)
        y = np.asarray(y, dtype=np.float64).ravel()
        from sklearn.model_selection import KFold

        self.cv_spearman_: dict[str, float] = {}
        if len(y) >= self.cv_below:
            self.chosen_ = "m3s"
            self.head_ = self._candidate("m3s").fit(X, y, layout=self.layout_, progress=progress, watch=watch)
            return self._watched()
        # Every fold must leave at least 3 videos to train on (a head's minimum).
        k = min(self.folds, len(y) // 3)
        folds = (
            [held for _, held in KFold(k, shuffle=True, random_state=self.seed).split(X)] if k >= 2 else []
        )
        for kind in CANDIDATES if folds else ():
            oof = np.empty(len(y))
            try:
                for held in folds:
                    train = np.setdiff1d(np.arange(len(y)), held)
                    head = self._candidate(kind).fit(X[train], y[train], layout=self.layout_)
                    oof[held] = head.predict(X[held])
            except TiermemError:  # e.g. a fold whose targets are all equal: this candidate cannot be judged
                self.cv_spearman_[kind] = -1.0
                continue
            rho = spearmanr(oof, y).statistic
            self.cv_spearman_[kind] = float(rho) if np.isfinite(rho) else -1.0
        # Too few videos to cross-validate, or no candidate judged: the closed-form ridge.
        self.chosen_ = max(CANDIDATES, key=lambda c: (self.cv_spearman_.get(c, -1.0), -CANDIDATES.index(c)))
        self.head_ = self._candidate(self.chosen_).fit(
            X, y, layout=self.layout_, progress=progress, watch=watch
        )
        return self._watched()

    def refit_choice(
        self, X: np.ndarray, y: np.ndarray, *, layout: Any = None, progress: Any = None
    ) -> "AutoHead":
        """A copy keeping this head's choice and its cross-validation evidence, the chosen
        candidate fitted again on (X, y) (`tiermem.model.experiment`'s refit on every label)."""
        again = copy.copy(self)
        X, _ = again._check_fit_inputs(X, y, layout)
        again.head_ = again._candidate(self.chosen_).fit(
            X, np.asarray(y, dtype=np.float64).ravel(), layout=again.layout_, progress=progress
        )
        for stale in ("watched_", "best_epochs_"):
            again.__dict__.pop(stale, None)
        return again._watched()

    def _watched(self) -> "AutoHead":
        """The kept candidate's scores of watched rows by epoch, when it has epochs."""
        if hasattr(self.head_, "watched_"):
            self.watched_ = self.head_.watched_
            self.best_epochs_ = self.head_.best_epochs_
        return self

    def _predict(self, X: np.ndarray) -> np.ndarray:
        # The chosen head answers in the target's units; `predict` maps [0, 1] units back to
        # them with this head's scaling (fitted on the same targets), so hand it [0, 1] units.
        return self.target_scaling_.transform(self.head_.predict(X))

    def state_dict(self) -> dict[str, Any]:
        inner = {f"inner.{k}": v for k, v in self.head_.state_dict().items()}
        return {
            **inner,
            "auto.chosen": self.chosen_,
            "auto.inner_params": self.head_.get_params(),
            "auto.cv_spearman": self.cv_spearman_,
            **self._common_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> "AutoHead":
        self._load_common(state)
        chosen = state.get("auto.chosen")
        if chosen not in CANDIDATES:
            raise StateError("auto.chosen", f"must be one of {', '.join(CANDIDATES)}, got {chosen!r}")
        inner = {k[len("inner.") :]: v for k, v in state.items() if k.startswith("inner.")}
        self.head_ = get_head_class(chosen)(**dict(state.get("auto.inner_params") or {})).load_state_dict(
            inner
        )
        self.chosen_ = chosen
        self.cv_spearman_ = {str(k): float(v) for k, v in dict(state.get("auto.cv_spearman") or {}).items()}
        return self

    def describe_choice(self) -> str:
        """One line: which candidate was kept, and on what evidence."""
        if not self.cv_spearman_:
            why = (
                f"{self.cv_below}+ training videos"
                if self.chosen_ == "m3s"
                else "too few videos to cross-validate"
            )
            return f"auto head kept {self.chosen_} ({why})"
        cv = ", ".join(f"{k} {v:.3f}" for k, v in self.cv_spearman_.items())
        return f"auto head kept {self.chosen_} (Spearman of out-of-fold scores on the training videos: {cv})"


__all__ = ["AutoHead", "CANDIDATES", "CV_BELOW"]

"""The auto head: whichever of ridge, M3-S, kernel ridge and their ensemble ranks held-out
training videos best.

On a few hundred noisy videos the M3-S MLP can trail the closed-form ridge (TRECVid 2020:
0.203 against 0.221 Spearman, mean of 5 partitions); on thousands it leads, and averaged with
kernel ridge it led both on captions and on titles + COCO-80. The auto head decides per
training set, on the training videos only: each candidate is fitted on k-1 of k seeded folds
and scores the held-out fold; the ensemble's out-of-fold scores are the mean of its members'
(no fit of its own). The candidate whose out-of-fold scores have the highest Spearman with the
targets is refitted on every training video and kept, unless an earlier candidate in
`CANDIDATES` is within `tolerance` of it (then the earlier, simpler one). A validation set given
to `fit` is never looked at, so a figure reported on it stays unbiased.

It is the default head. From `cv_below` training videos on (2000 by default) one held-out
fold decides instead of k (k fits of M3-S there would cost minutes for a choice one fold
already makes clearly); above the kernel's limit (`kernel_ridge.MAX_ROWS`) it keeps M3-S
without trying.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from tiermem.errors import TiermemError
from tiermem.model.base import Head, StateError
from tiermem.model.kernel_ridge import MAX_ROWS as KERNEL_MAX_ROWS
from tiermem.model.registry import get_head, get_head_class, register_head

#: The heads the auto head chooses between, in the order ties are broken.
CANDIDATES = ("ridge", "m3s", "kernel-ridge", "ensemble")
#: The members of the ensemble candidate.
ENSEMBLE = ("kernel-ridge", "m3s")
#: From this many training videos on, one held-out fold decides instead of k.
CV_BELOW = 2000
#: A candidate later in `CANDIDATES` is kept only if it beats every earlier one by more than this
#: much Spearman: smaller differences are noise in the folds (on TRECVid 2020, kernel ridge came
#: within 0.0001 of ridge in the auto head's folds of 398 training videos, and 0.11 below it in
#: benchmarks/realbench.py's 5 folds of all 442).
TOLERANCE = 0.005


def choose(cv_spearman: dict[str, float], tolerance: float = TOLERANCE) -> str:
    """The first candidate, in `CANDIDATES` order, within `tolerance` of the best cross-validated
    Spearman (ridge when none was judged)."""
    scores = {c: cv_spearman.get(c, -1.0) for c in CANDIDATES}
    best = max(scores.values())
    return next(c for c in CANDIDATES if scores[c] >= best - tolerance)


@register_head
class AutoHead(Head):
    """Ridge, M3-S, kernel ridge or the kernel ridge + M3-S ensemble, by `folds`-fold
    cross-validation on the training videos (seed `seed`); by one of those folds from
    `cv_below` training videos on."""

    name = "auto"
    #: Where the M3-S candidate trains ("cpu" or "cuda"); a runtime choice, not a saved parameter.
    device: str = "cpu"

    def __init__(
        self,
        m3s: dict[str, Any] | None = None,
        folds: int = 5,
        seed: int = 0,
        cv_below: int = CV_BELOW,
        tolerance: float = TOLERANCE,
    ) -> None:
        self.m3s = dict(m3s or {})  # parameters of the M3-S candidate (`get_head("m3s", **m3s)`)
        self.folds = int(folds)
        self.seed = int(seed)
        self.cv_below = int(cv_below)
        self.tolerance = float(tolerance)

    def get_params(self) -> dict[str, Any]:
        return {
            "m3s": self.m3s,
            "folds": self.folds,
            "seed": self.seed,
            "cv_below": self.cv_below,
            "tolerance": self.tolerance,
        }

    def check_params(self) -> None:
        if self.folds < 2:
            raise TiermemError(f"auto head: folds must be at least 2, got {self.folds}")
        if self.cv_below < 0:
            raise TiermemError(f"auto head: cv_below must be at least 0, got {self.cv_below}")
        if not 0.0 <= self.tolerance < 1.0:
            raise TiermemError(f"auto head: tolerance must be in [0, 1), got {self.tolerance}")
        get_head("m3s", **self.m3s).check_params()

    def _candidate(self, kind: str) -> Head:
        if kind == "ensemble":
            head = get_head(kind, members=list(ENSEMBLE), params={"m3s": self.m3s})
        else:
            head = get_head(kind, **(self.m3s if kind == "m3s" else {}))
        if hasattr(head, "device"):
            head.device = self.device  # type: ignore[attr-defined]
        return head

    def fit(self, X, y, X_val=None, y_val=None, *, layout=None, progress=None, watch=None) -> "AutoHead":
        """Choose by cross-validation on (X, y), then refit the choice on all of it (`watch`: see
        `Head.fit`; only the final fit watches)."""
        X, _ = self._check_fit_inputs(X, y, layout)
        y = np.asarray(y, dtype=np.float64).ravel()
        self.cv_spearman_: dict[str, float] = {}
        self.cv_scheme_ = ""
        if len(y) > KERNEL_MAX_ROWS:
            self.chosen_ = "m3s"
        else:
            self.cv_spearman_, self.cv_scheme_ = self._cross_validate(X, y)
            # Too few videos to cross-validate, or no candidate judged: the closed-form ridge.
            self.chosen_ = choose(self.cv_spearman_, self.tolerance)
        self.head_ = self._candidate(self.chosen_).fit(
            X, y, layout=self.layout_, progress=progress, watch=watch
        )
        return self._watched()

    def _cross_validate(self, X: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], str]:
        """Spearman of each candidate's out-of-fold scores (all k folds, or the first from
        `cv_below` videos on; -1 for a candidate that could not be judged), and which folds."""
        from sklearn.model_selection import KFold

        # Every fold must leave at least 3 videos to train on (a head's minimum).
        k = min(self.folds, len(y) // 3)
        if k < 2:
            return {}, ""
        folds = [held for _, held in KFold(k, shuffle=True, random_state=self.seed).split(X)]
        scheme = f"out-of-fold scores of {k}-fold cross-validation"
        if len(y) >= self.cv_below:
            folds, scheme = folds[:1], f"one held-out fold of {k}"
        judged = np.concatenate(folds)
        oof: dict[str, np.ndarray] = {}
        for kind in (c for c in CANDIDATES if c != "ensemble"):
            scores = np.empty(len(y))
            try:
                for held in folds:
                    train = np.setdiff1d(np.arange(len(y)), held)
                    head = self._candidate(kind).fit(X[train], y[train], layout=self.layout_)
                    scores[held] = head.predict(X[held])
            except TiermemError:  # e.g. a fold whose targets are all equal: this candidate cannot be judged
                continue
            oof[kind] = scores[judged]
        if all(m in oof for m in ENSEMBLE):
            oof["ensemble"] = np.mean([oof[m] for m in ENSEMBLE], axis=0)
        result = {}
        for kind in CANDIDATES:
            rho = spearmanr(oof[kind], y[judged]).statistic if kind in oof else np.nan
            result[kind] = float(rho) if np.isfinite(rho) else -1.0
        return result, scheme

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
            "auto.cv_scheme": self.cv_scheme_,
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
        # Heads saved before the scheme was recorded cross-validated on every fold.
        self.cv_scheme_ = str(state.get("auto.cv_scheme") or "out-of-fold scores")
        return self

    def describe_choice(self) -> str:
        """One line: which candidate was kept, and on what evidence."""
        kept = self.chosen_ + (f" ({'+'.join(ENSEMBLE)})" if self.chosen_ == "ensemble" else "")
        if not self.cv_spearman_:
            why = (
                f"over {KERNEL_MAX_ROWS} training videos"
                if self.chosen_ == "m3s"
                else "too few videos to cross-validate"
            )
            return f"auto head kept {kept} ({why})"
        cv = ", ".join(f"{k} {v:.3f}" for k, v in self.cv_spearman_.items())
        return f"auto head kept {kept} (Spearman of {self.cv_scheme_} on the training videos: {cv})"


__all__ = ["AutoHead", "CANDIDATES", "CV_BELOW", "ENSEMBLE", "TOLERANCE", "choose"]

"""Two ways to report a head on a validation split: the honest one and the paper's.

- **honest**: the head's epochs are chosen on an inner split of the training videos (or it
  has no epochs), so the validation split only measures. This is tiermem's figure.
- **best epoch on val** (the M3-S reference protocol, `train.py` of the authors' code): the
  epoch kept is the one with the best Spearman on the very split that is then reported.
  Choosing on the reported split makes the figure optimistic; it is shown only to compare
  with published numbers, labelled `PAPER_LABEL`.

Both come from the same training run: the head is fitted with ``watch=X_val`` (`Head.fit`),
which scores the validation videos after every epoch without choosing anything. The paper's
figure then picks the epoch by those scores. For one net that is the best epoch outright; for
an ensemble each member's epoch is re-chosen in turn, starting from the honest choice, while
that raises the validation Spearman. The honest epochs are among the candidates, so the
paper-protocol figure is never below the honest one. A head without epochs (ridge, or the
auto head keeping ridge) has nothing to choose: both figures are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tiermem.metrics import Metrics, evaluate, spearman
from tiermem.model.base import Head

#: How every table and JSON document labels the paper-protocol figure.
PAPER_LABEL = "optimistic (paper protocol)"


@dataclass
class TwoProtocols:
    """A validation split's figures under both protocols, with the epochs each kept."""

    honest: Metrics
    best_epoch_on_val: Metrics
    honest_epochs: list[int] | None  # per ensemble member; None: the head has no epochs
    val_epochs: list[int] | None

    def to_dict(self) -> dict[str, Any]:
        """``{"honest": {...}, "best_epoch_on_val": {..., "label": PAPER_LABEL}}`` (JSON-able)."""
        return {
            "honest": {
                **self.honest.to_dict(),
                "epochs": self.honest_epochs,
                "protocol": "epochs chosen on an inner split of the training videos",
            },
            "best_epoch_on_val": {
                **self.best_epoch_on_val.to_dict(),
                "epochs": self.val_epochs,
                "protocol": "epoch with the best Spearman on this validation split",
                "label": PAPER_LABEL,
            },
        }


def best_epochs_on(watched: np.ndarray, y: np.ndarray, start: list[int]) -> list[int]:
    """Per member, the epoch whose watched scores give the ensemble mean the best Spearman
    with `y`: members re-chosen in turn from `start` until no change raises it."""
    members, epochs, _ = watched.shape
    chosen = list(start)
    best = spearman(y, watched[np.arange(members), chosen].mean(axis=0))
    best = best if np.isfinite(best) else -np.inf  # a constant prediction ranks nothing
    changed = True
    while changed:
        changed = False
        for k in range(members):
            others = watched[np.arange(members), chosen].sum(axis=0) - watched[k, chosen[k]]
            rhos = np.array([spearman(y, (others + watched[k, e]) / members) for e in range(epochs)])
            rhos[~np.isfinite(rhos)] = -np.inf  # a constant prediction has no ranking
            e = int(np.argmax(rhos))
            if rhos[e] > best:
                best, chosen[k], changed = rhos[e], e, True
    return chosen


def refit_watching(head: Head, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, layout: Any) -> Head:
    """`head` (fitted on X, y) trained again with the same settings and seed, scoring `X_val`
    after every epoch; training is seeded, so the nets are the same. A head without epochs
    (ridge, or the auto head that kept ridge) is returned as it is."""
    from tiermem.model.registry import get_head

    inner = getattr(head, "head_", head)  # the auto head's kept candidate
    if inner.name != "m3s":
        return head
    again = get_head("m3s", **inner.get_params())
    again.device = getattr(inner, "device", "cpu")
    return again.fit(X, y, layout=layout, watch=X_val)


def two_protocols(
    head: Head, X_val: np.ndarray, y_val: np.ndarray, *, n_resamples: int = 1000, seed: int = 0
) -> TwoProtocols:
    """Both figures of a head fitted with ``watch=X_val``; a head without `watched_` has no epochs."""
    y_val = np.asarray(y_val, dtype=np.float64)
    honest = evaluate(y_val, head.predict(X_val), n_resamples=n_resamples, seed=seed)
    watched = getattr(head, "watched_", None)
    if watched is None:
        return TwoProtocols(honest, honest, None, None)
    start = [int(e) for e in head.best_epochs_]  # type: ignore[attr-defined]
    chosen = best_epochs_on(watched, y_val, start)
    scores = watched[np.arange(len(chosen)), chosen].mean(axis=0)
    paper = evaluate(y_val, scores, n_resamples=n_resamples, seed=seed)
    return TwoProtocols(honest, paper, start, chosen)


__all__ = ["PAPER_LABEL", "TwoProtocols", "best_epochs_on", "refit_watching", "two_protocols"]

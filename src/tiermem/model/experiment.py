"""Train and apply heads on feature tables: what `tiermem train` and `predict --block` call.

Kept apart from the training loop so the Python API does everything the CLI does:
`fit_on_blocks` (seeded validation split, fit, metrics) and `predict_on_blocks` (a saved
head on new tables). The module study over blocks is `tiermem.ablation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tiermem.blocks import Block, JoinedBlocks, join_blocks
from tiermem.errors import DataMismatchError
from tiermem.metrics import Metrics, evaluate
from tiermem.model.base import Head
from tiermem.model.protocols import TwoProtocols, two_protocols
from tiermem.run import ProgressCallback
from tiermem.splits import split_train_val


@dataclass
class FitResult:
    """A fitted head with its figures on the training and validation splits.

    `val` is the honest validation figure; `validation` holds it beside the paper protocol's
    (`tiermem.model.protocols`).
    """

    head: Head
    train: Metrics
    val: Metrics | None
    train_ids: np.ndarray
    val_ids: np.ndarray
    dropped: list[str] = field(default_factory=list)  # labelled ids absent from some block
    validation: TwoProtocols | None = None
    #: With `refit`: the same configuration fitted again on every labelled video (the head to
    #: keep; `head` is the one the validation figures measured).
    refitted: Head | None = None

    @property
    def final(self) -> Head:
        """The head to save: refitted on every label when it was, else the validated one."""
        return self.refitted if self.refitted is not None else self.head


def join_labels(
    blocks: Sequence[Block], ids: np.ndarray, y: np.ndarray, on_missing: str
) -> tuple[JoinedBlocks, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size != len(ids):
        raise DataMismatchError(f"{len(ids)} video_ids but {y.size} labels")
    joined = join_blocks(blocks, ids, on_missing=on_missing)
    return joined, y[joined.rows]


def fit_on_blocks(
    blocks: Sequence[Block],
    ids: Sequence[str] | np.ndarray,
    y: np.ndarray,
    head: Head,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_missing: str = "raise",
    n_resamples: int = 1000,
    progress: ProgressCallback | None = None,
    refit: bool = False,
) -> FitResult:
    """Join `blocks` on the labelled `ids`, split off a seeded validation set, fit `head`.

    `refit`: then fit the configuration the validation measured again on every labelled video,
    as scikit-learn's ``GridSearchCV(refit=True)`` does (the auto head: the candidate it kept,
    its cross-validation evidence kept too; an M3-S head picks its epochs again on its own inner split of all the
    videos). The figures stay those of the validation; the refitted head records both counts.
    """
    joined, y = join_labels(blocks, np.asarray(ids).astype(str), y, on_missing)
    tr, va = split_train_val(len(joined.ids), val_fraction, seed)
    X = joined.X
    has_val = va.size > 0
    # The validation split only measures: the M3-S head picks its epochs on an inner split,
    # and scores the validation videos after every epoch for the paper protocol's figure.
    head.fit(X[tr], y[tr], layout=joined.layout, progress=progress, watch=X[va] if has_val else None)
    train_m = evaluate(y[tr], head.predict(X[tr]), n_resamples=n_resamples, seed=seed)
    both = two_protocols(head, X[va], y[va], n_resamples=n_resamples, seed=seed) if has_val else None
    head.provenance_ = {"trained_on": int(tr.size), "validated_on": int(va.size), "refitted": False}
    result = FitResult(
        head, train_m, both.honest if both else None, joined.ids[tr], joined.ids[va], joined.dropped, both
    )
    if refit and has_val:
        if hasattr(head, "refit_choice"):  # the auto head: its choice refitted, its evidence kept
            again = head.refit_choice(X, y, layout=joined.layout, progress=progress)
        else:
            again = _same_configuration(head).fit(X, y, layout=joined.layout, progress=progress)
        again.provenance_ = {"trained_on": int(len(y)), "validated_on": int(va.size), "refitted": True}
        result.refitted = again
    return result


def _same_configuration(head: Head) -> Head:
    """An unfitted head configured as `head` was."""
    from tiermem.model.registry import get_head

    fresh = get_head(head.name, **head.get_params())
    if hasattr(head, "device"):
        fresh.device = head.device  # type: ignore[attr-defined]
    return fresh


def predict_on_blocks(
    head: Head, blocks: Sequence[Block], ids: Sequence[str] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a fitted head for `ids` (default: every id of the first block in the head's order).

    Blocks must match the head's layout (names, columns); every id must be in every block.
    """
    layout = head.layout_
    if ids is None:
        first = next((b for b in blocks if b.name == layout[0].name), None)
        ids = first.ids if first is not None else blocks[0].ids
    joined = join_blocks(blocks, ids, layout=layout)
    return joined.ids, head.predict(joined.X)


__all__ = ["FitResult", "fit_on_blocks", "predict_on_blocks"]

"""The paper's module study: every block alone, every leave-one-out, and all blocks.

`ablate_matrix` is the study itself on an already joined design matrix; `ablate` runs it on
feature tables (what `tiermem ablate` calls), and the pipeline's evaluation runs it on the
tiers of a fitted model with the configured head and ridge beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tiermem.blocks import Block, BlockLayout
from tiermem.errors import DataMismatchError
from tiermem.metrics import Metrics, format_spearman
from tiermem.model.base import Head
from tiermem.model.experiment import join_labels
from tiermem.model.protocols import PAPER_LABEL, two_protocols
from tiermem.splits import split_train_val

#: A name and a maker of fresh unfitted heads, e.g. ("ridge", lambda: get_head("ridge")).
HeadMaker = tuple[str, Callable[[], Head]]


def ablation_configs(names: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Every single block, every leave-one-out, and all blocks; each block set once.

    Labels read ``a``, ``all − a`` and ``all``; with two blocks the leave-one-outs are the
    singles, so they are not repeated.
    """
    names = list(names)
    configs: list[tuple[str, list[str]]] = [(n, [n]) for n in names]
    if len(names) > 2:
        configs += [(f"all − {n}", [m for m in names if m != n]) for n in names]
    if len(names) > 1:
        configs.append(("all", names))
    return configs


@dataclass
class AblationRow:
    label: str
    blocks: list[str]
    n_features: int
    head: str
    val: Metrics  # honest: epochs chosen on the training videos
    val_best_epoch: Metrics  # the paper protocol's: best epoch on this validation split (optimistic)


def ablate_matrix(
    X_tr: np.ndarray,
    y_tr: np.ndarray,
    X_va: np.ndarray,
    y_va: np.ndarray,
    layout: Sequence[BlockLayout],
    heads: Sequence[HeadMaker],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    on_row: Callable[[AblationRow], None] | None = None,
) -> list[AblationRow]:
    """Fit a fresh head of each kind on each `ablation_configs` block set; validation metrics."""
    cols_of = {name: np.arange(cols.start, cols.stop) for name, cols in BlockLayout.slices(layout).items()}
    by_name = {b.name: b for b in layout}
    rows = []
    for label, names in ablation_configs([b.name for b in layout]):
        cols = np.concatenate([cols_of[n] for n in names])
        for kind, make in heads:
            head = make().fit(X_tr[:, cols], y_tr, layout=[by_name[n] for n in names], watch=X_va[:, cols])
            both = two_protocols(head, X_va[:, cols], y_va, n_resamples=n_resamples, seed=seed)
            row = AblationRow(label, names, int(cols.size), kind, both.honest, both.best_epoch_on_val)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def ablate(
    blocks: Sequence[Block],
    ids: Sequence[str] | np.ndarray,
    y: np.ndarray,
    make: Callable[[], Head],
    *,
    head: str = "head",
    val_fraction: float = 0.1,
    seed: int = 0,
    n_resamples: int = 1000,
    on_missing: str = "raise",
    on_row: Callable[[AblationRow], None] | None = None,
) -> list[AblationRow]:
    """The study on feature tables with heads from `make` (named `head` in the rows); all rows
    share one join (one set of videos) and one validation split."""
    if val_fraction <= 0:
        raise DataMismatchError("an ablation needs a validation split (val_fraction > 0)")
    joined, y = join_labels(blocks, np.asarray(ids).astype(str), y, on_missing)
    tr, va = split_train_val(len(joined.ids), val_fraction, seed)
    X = joined.X
    return ablate_matrix(
        X[tr],
        y[tr],
        X[va],
        y[va],
        joined.layout,
        [(head, make)],
        n_resamples=n_resamples,
        seed=seed,
        on_row=on_row,
    )


def _paper_columns(r: AblationRow) -> dict[str, float]:
    m = r.val_best_epoch
    return {
        "spearman_best_epoch_on_val": m.spearman,
        "spearman_best_epoch_on_val_lo": m.spearman_lo,
        "spearman_best_epoch_on_val_hi": m.spearman_hi,
    }


def ablation_frame(rows: Sequence[AblationRow]) -> pd.DataFrame:
    """One row per block set: config, blocks, n_features, n, spearman and CI, pearson, mse, mae
    (honest), then spearman_best_epoch_on_val with its CI (the paper protocol's)."""
    return pd.DataFrame(
        [
            {
                "config": r.label,
                "blocks": "+".join(r.blocks),
                "n_features": r.n_features,
                **r.val.to_dict(),
                **_paper_columns(r),
            }
            for r in rows
        ]
    )


def tier_ablation_frame(rows: Sequence[AblationRow]) -> pd.DataFrame:
    """A pipeline's study, one row per tier set and head: tiers, head, n, spearman and CI, ...
    (honest), spearman_best_epoch_on_val and its CI (paper protocol)."""
    return pd.DataFrame(
        [{"tiers": r.label, "head": r.head, **r.val.to_dict(), **_paper_columns(r)} for r in rows]
    )


def ablation_markdown(rows: Sequence[AblationRow]) -> str:
    """The ablation as a Markdown table (Spearman with its 95% bootstrap CI)."""
    lines = [
        f"| config | blocks | features | n val | Spearman [95% CI] | Pearson | MSE | best epoch on val, {PAPER_LABEL} |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        m = r.val
        lines.append(
            f"| {r.label} | {' + '.join(r.blocks)} | {r.n_features} | {m.n} | "
            f"{format_spearman(m)} | {m.pearson:.3f} | {m.mse:.4f} | {format_spearman(r.val_best_epoch)} |"
        )
    return "\n".join(lines) + "\n"


__all__ = [
    "AblationRow",
    "HeadMaker",
    "ablate",
    "ablate_matrix",
    "ablation_configs",
    "ablation_frame",
    "ablation_markdown",
    "tier_ablation_frame",
]

"""Train, predict and ablate heads on feature tables: what the CLI commands call.

Kept apart from the training loop so the Python API does everything the CLI does:
`fit_on_blocks` (seeded validation split, fit, metrics), `predict_on_blocks` (a saved
head on new tables) and `ablate` (the paper's module study for any blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tiermem.blocks import Block, BlockLayout, JoinedBlocks, join_blocks
from tiermem.errors import DataMismatchError
from tiermem.evaluate import Metrics, evaluate
from tiermem.model.head import Head


def split_train_val(n: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of range(n): (train positions, validation positions), both sorted."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataMismatchError(f"validation fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val < 3:
        raise DataMismatchError(f"a validation fraction of {val_fraction} of {n} videos leaves {n_val} (< 3) to validate on")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@dataclass
class FitResult:
    """A fitted head with its figures on the training and validation splits."""

    head: Head
    train: Metrics
    val: Metrics | None
    train_ids: np.ndarray
    val_ids: np.ndarray
    dropped: list[str] = field(default_factory=list)  # labelled ids absent from some block


def _join_labels(
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
    progress: Any = None,
) -> FitResult:
    """Join `blocks` on the labelled `ids`, split off a seeded validation set, fit `head`."""
    joined, y = _join_labels(blocks, np.asarray(ids).astype(str), y, on_missing)
    tr, va = split_train_val(len(joined.ids), val_fraction, seed)
    X = joined.X
    has_val = va.size > 0
    # The validation split only measures: the M3-S head picks its epochs on an inner split.
    head.fit(X[tr], y[tr], layout=joined.layout, progress=progress)
    train_m = evaluate(y[tr], head.predict(X[tr]), n_resamples=n_resamples, seed=seed)
    val_m = evaluate(y[va], head.predict(X[va]), n_resamples=n_resamples, seed=seed) if has_val else None
    return FitResult(head, train_m, val_m, joined.ids[tr], joined.ids[va], joined.dropped)


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


# -- ablation --------------------------------------------------------------------------------


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
    val: Metrics


def ablate(
    blocks: Sequence[Block],
    ids: Sequence[str] | np.ndarray,
    y: np.ndarray,
    make: Callable[[], Head],
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    n_resamples: int = 1000,
    on_missing: str = "raise",
    on_row: Callable[[AblationRow], None] | None = None,
) -> list[AblationRow]:
    """Fit a fresh head (from `make`) on each `ablation_configs` block set; validation metrics.

    All rows share one join (so one set of videos) and one validation split.
    """
    if val_fraction <= 0:
        raise DataMismatchError("an ablation needs a validation split (val_fraction > 0)")
    joined, y = _join_labels(blocks, np.asarray(ids).astype(str), y, on_missing)
    tr, va = split_train_val(len(joined.ids), val_fraction, seed)
    by_name = {b.name: b for b in joined.layout}
    rows = []
    for label, names in ablation_configs([b.name for b in joined.layout]):
        cols = np.concatenate([np.arange(joined.X.shape[1])[joined.slices[n]] for n in names])
        X = joined.X[:, cols]
        layout: list[BlockLayout] = [by_name[n] for n in names]
        head = make().fit(X[tr], y[tr], layout=layout)
        row = AblationRow(label, names, int(cols.size), evaluate(y[va], head.predict(X[va]), n_resamples=n_resamples, seed=seed))
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def ablation_frame(rows: Sequence[AblationRow]):  # -> pandas.DataFrame
    """One row per block set: label, blocks, n_features, n, spearman and CI, pearson, mse, mae."""
    import pandas as pd

    return pd.DataFrame(
        [{"config": r.label, "blocks": "+".join(r.blocks), "n_features": r.n_features, **r.val.to_dict()} for r in rows]
    )


def ablation_markdown(rows: Sequence[AblationRow]) -> str:
    """The ablation as a Markdown table (Spearman with its 95% bootstrap CI)."""
    lines = [
        "| config | blocks | features | n val | Spearman [95% CI] | Pearson | MSE |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        m = r.val
        lines.append(
            f"| {r.label} | {' + '.join(r.blocks)} | {r.n_features} | {m.n} | "
            f"{m.spearman:.3f} [{m.spearman_lo:.3f}, {m.spearman_hi:.3f}] | {m.pearson:.3f} | {m.mse:.4f} |"
        )
    return "\n".join(lines) + "\n"


__all__ = [
    "AblationRow",
    "FitResult",
    "ablate",
    "ablation_configs",
    "ablation_frame",
    "ablation_markdown",
    "fit_on_blocks",
    "predict_on_blocks",
    "split_train_val",
]

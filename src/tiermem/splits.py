"""Which videos train, which validate: seeded random splits and a dataset's published splits.

A leaf module (numpy only), so heads, experiments and the pipeline can all use it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tiermem.errors import DataMismatchError

if TYPE_CHECKING:
    from tiermem.datasets.record import Dataset

#: Published split names read as validation: MediaEval calls its validation set "dev".
VALIDATION_SPLITS = ("val", "dev")


def split_train_val(n: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of range(n): (train positions, validation positions), both sorted."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataMismatchError(f"validation fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val < 3:
        raise DataMismatchError(
            f"a validation fraction of {val_fraction} of {n} videos leaves {n_val} (< 3) to validate on"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@dataclass(frozen=True)
class DatasetSplits:
    """Boolean masks over a dataset's videos; only labelled videos are in any of them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    left_out: dict[str, int]  # split name -> labelled videos in no train/val/test split

    def without(self, ids: np.ndarray, bad: set[str]) -> "DatasetSplits":
        """The same splits less the videos whose id is in `bad` (e.g. files that failed to decode)."""
        keep = ~np.isin(ids, sorted(bad))
        return DatasetSplits(self.train & keep, self.val & keep, self.test & keep, self.left_out)


def dataset_splits(dataset: "Dataset", target: str, val_fraction: float, seed: int = 0) -> DatasetSplits:
    """Train/validation/test masks of `dataset`'s videos labelled for `target`.

    Published splits are used as they are ("dev" counts as validation); labelled videos a
    split file does not list are left out rather than trained on. Without a published
    validation split, a seeded `val_fraction` of the training videos validates.
    """
    if target not in dataset.scores:
        raise DataMismatchError(
            f"dataset {dataset.name} has no target {target!r}; it has {', '.join(dataset.scores.columns)}"
        )
    labelled = np.isfinite(dataset.scores[target].to_numpy(dtype=np.float64))
    split = np.asarray(dataset.split if dataset.split is not None else ["train"] * len(dataset.ids))
    train = labelled & (split == "train")
    val = labelled & np.isin(split, VALIDATION_SPLITS)
    test = labelled & (split == "test")
    other = labelled & ~(train | val | test)
    names, counts = np.unique(split[other], return_counts=True)
    if not val.any():
        pos = np.flatnonzero(train)
        tr, va = split_train_val(len(pos), val_fraction, seed)
        train = np.zeros_like(train)
        train[pos[tr]] = True
        val[pos[va]] = True
    if train.sum() < 3:
        raise DataMismatchError(f"dataset {dataset.name}: only {int(train.sum())} labelled training videos")
    return DatasetSplits(train, val, test, {str(n): int(c) for n, c in zip(names, counts)})


__all__ = ["DatasetSplits", "VALIDATION_SPLITS", "dataset_splits", "split_train_val"]

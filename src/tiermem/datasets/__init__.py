"""Readers of real published dataset layouts, each returning one `Dataset` record.

    >>> from tiermem.datasets import read_dataset, list_datasets
    >>> ds = read_dataset("realbench", "../shared/realbench/memento10k")
    >>> ds.target("scores_normalized_short_term")[:3]

Layouts: `memento10k` (the authors' JSON release), `mediaeval2021` (its Memento10k and
TRECVid CSVs), `videomem` (VideoMem / MediaEval 2018-2019 ground truth, optional M3-S split
pickle read as names only), `generic` and `csv` (any CSV with a video_id or path column),
`realbench` (labels + pre-extracted features). Each registers itself with `register_dataset`.
Every reader refuses a bad file with one `DatasetError` line naming the file and row.
"""

from __future__ import annotations

from tiermem.datasets.captions import read_captions_csv
from tiermem.datasets.generic import read_generic_csv, read_labels_csv
from tiermem.datasets.mediaeval2021 import read_mediaeval2021
from tiermem.datasets.memento import read_memento10k
from tiermem.datasets.names_pickle import load_plain_pickle, read_split_pickle
from tiermem.datasets.realbench import read_realbench
from tiermem.datasets.record import Dataset, score_kind
from tiermem.datasets.registry import DatasetLayout, get_dataset, list_datasets, read_dataset, register_dataset
from tiermem.datasets.videomem import read_videomem

__all__ = [
    "Dataset",
    "DatasetLayout",
    "get_dataset",
    "list_datasets",
    "load_plain_pickle",
    "read_captions_csv",
    "read_dataset",
    "read_generic_csv",
    "read_labels_csv",
    "read_mediaeval2021",
    "read_memento10k",
    "read_realbench",
    "read_split_pickle",
    "read_videomem",
    "register_dataset",
    "score_kind",
]

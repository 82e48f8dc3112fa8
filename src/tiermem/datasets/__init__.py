"""Readers of real published dataset layouts, each returning one `Dataset` record.

    >>> from tiermem.datasets import list_datasets, read_dataset
    >>> ds = read_dataset("realbench", realbench / "memento10k")   # real labels, pre-extracted features
    >>> ds.name, len(ds.ids), ds.targets[1:3]
    ('memento10k', 8500, ['scores_raw_short_term', 'scores_normalized_short_term'])

Layouts: `memento10k` (the authors' JSON release), `mediaeval2021` (its Memento10k and
TRECVid CSVs), `videomem` (VideoMem / MediaEval 2018-2019 ground truth, optional M3-S split
pickle read as names only), `generic` and `csv` (any CSV with a video_id or path column),
`realbench` (labels + pre-extracted features). Each registers itself with `register_dataset`.
Every reader refuses a bad file with one `DatasetError` line naming the file and row.
"""

from __future__ import annotations

from tiermem.lazy import lazy_exports

_EXPORTS = {
    "Dataset": "tiermem.datasets.record",
    "score_kind": "tiermem.datasets.record",
    "DatasetLayout": "tiermem.datasets.registry",
    "get_dataset": "tiermem.datasets.registry",
    "list_datasets": "tiermem.datasets.registry",
    "read_dataset": "tiermem.datasets.registry",
    "register_dataset": "tiermem.datasets.registry",
    "read_captions_csv": "tiermem.datasets.captions",
    "read_generic_csv": "tiermem.datasets.generic",
    "read_labels_csv": "tiermem.datasets.generic",
    "read_mediaeval2021": "tiermem.datasets.mediaeval2021",
    "read_memento10k": "tiermem.datasets.memento",
    "load_plain_pickle": "tiermem.datasets.names_pickle",
    "read_split_pickle": "tiermem.datasets.names_pickle",
    "read_realbench": "tiermem.datasets.realbench",
    "read_videomem": "tiermem.datasets.videomem",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

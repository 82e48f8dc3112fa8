"""The realbench layout: real MediaEval labels with pre-extracted features, test labels withheld.

One folder per set::

    labels_train.csv              video_id + score columns (e.g. short_term, n_short_term, ...)
    ids_test.csv                  video_id: the videos whose scores are withheld
    captions.csv | titles.csv     video_id, description_0..4 | video_id, title   (optional)
    features_<block>.parquet      video_id + <block>_<i> columns                  (optional)

Train videos get split "train", test videos split "test" with NaN scores. Feature tables are
listed in `Dataset.tables` (block name -> file), not loaded: joining blocks is
`tiermem.blocks`' job.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tiermem.datasets.captions import read_captions_csv
from tiermem.datasets.record import Dataset, clean_ids, clean_scores, read_csv, require_columns
from tiermem.datasets.registry import register_dataset
from tiermem.errors import DatasetError

CAPTION_FILES = ("captions.csv", "titles.csv")


@register_dataset("realbench")
def read_realbench(set_dir: str | Path, *, name: str | None = None) -> Dataset:
    """Read one realbench set (e.g. `../shared/realbench/memento10k`)."""
    root = Path(set_dir)
    labels = root / "labels_train.csv"
    df = read_csv(labels, dtype={"video_id": str})
    require_columns(df, ["video_id"], labels)
    score_cols = [c for c in df.columns if c != "video_id"]
    if not score_cols:
        raise DatasetError(f"{labels}: no score column beside video_id")
    ids = clean_ids(df["video_id"], labels)
    scores = clean_scores(df, score_cols, labels)
    split = ["train"] * len(ids)
    sources = [str(labels)]

    test_path = root / "ids_test.csv"
    if test_path.is_file():
        tdf = read_csv(test_path, dtype={"video_id": str})
        require_columns(tdf, ["video_id"], test_path)
        test_ids = clean_ids(tdf["video_id"], test_path)
        train = set(ids)
        both = [v for v in test_ids if v in train]
        if both:
            raise DatasetError(f"{test_path}: video {both[0]!r} is also in {labels.name} ({len(both)} such)")
        ids += test_ids
        split += ["test"] * len(test_ids)
        scores = pd.concat(
            [scores, pd.DataFrame(index=range(len(test_ids)), columns=score_cols, dtype=float)]
        )
        sources.append(str(test_path))
    scores.index = pd.Index(ids, name="video_id")

    captions = None
    cap_path = next((root / f for f in CAPTION_FILES if (root / f).is_file()), None)
    if cap_path is not None:
        by_id = read_captions_csv(cap_path)
        missing = [v for v in ids if v not in by_id]
        if missing:
            raise DatasetError(
                f"{cap_path}: no caption for video {missing[0]!r} ({len(missing)} videos without)"
            )
        captions = [by_id[v] for v in ids]
        sources.append(str(cap_path))

    tables = {p.stem.removeprefix("features_"): p for p in sorted(root.glob("features_*.parquet"))}
    return Dataset(
        name=name or root.name,
        ids=ids,
        scores=scores,
        captions=captions,
        split=split,
        tables=tables,
        sources=sources,
    )

"""Any labels CSV: a `video_id` (or `path`) column and score columns named by the caller."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tiermem.datasets.record import (
    Dataset,
    clean_captions,
    clean_ids,
    clean_scores,
    read_csv,
    require_columns,
    resolve_videos,
    row_label,
)
from tiermem.datasets.registry import register_dataset
from tiermem.errors import DatasetError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")


@register_dataset("generic", target_option="scores")
def read_generic_csv(
    path: str | Path,
    scores: str | Sequence[str],
    *,
    id_column: str | None = None,
    path_column: str = "path",
    video_dir: str | Path | None = None,
    videos: bool | None = None,
    caption_columns: Sequence[str] = (),
    split_column: str | None = None,
    allow_missing: bool = False,
    name: str | None = None,
) -> Dataset:
    """Read a labels CSV with one row per video.

    Ids come from `id_column` (default `video_id`; without one, the file names of the `path`
    column, extension dropped). Videos come from the `path` column (relative paths resolve
    against the CSV's folder) or, when `video_dir` is given, `<video_dir>/<id><ext>` for a
    common video extension. `videos`: True requires every file, False ignores them, None
    checks them whenever a path column or `video_dir` is there. Each score column must be a
    memorability in [0, 1] (counts and decay rates by their own rules, see `score_kind`);
    empty cells are refused unless `allow_missing` (then NaN: not labelled).
    """
    path = Path(path)
    targets = [scores] if isinstance(scores, str) else list(scores)
    if not targets:
        raise DatasetError(f"{path}: no score column named")
    df = read_csv(path, dtype=str)
    if id_column is None:
        id_column = "video_id" if "video_id" in df.columns else None
    if id_column is None and path_column not in df.columns:
        raise DatasetError(
            f"{path}: missing column video_id (or {path_column}) (has: {', '.join(map(str, df.columns))})"
        )
    require_columns(df, [c for c in (id_column, *targets, *caption_columns, split_column) if c], path)

    has_paths = path_column in df.columns
    if has_paths:
        files = clean_ids(df[path_column], path, what=path_column)
    ids = clean_ids(df[id_column], path) if id_column else [Path(f).stem for f in files]
    if not id_column:
        dup = pd.Index(ids)[pd.Index(ids).duplicated()]
        if len(dup):
            raise DatasetError(f"{path}: two files share the video id {dup[0]!r}")

    # A user's own file: scores in their own units (a fit maps them to [0, 1] as `train` does).
    table = clean_scores(df, targets, path, allow_missing=allow_missing, own_units=True)
    table.index = pd.Index(ids, name="video_id")

    paths: list[str] | None = None
    if videos is not False and has_paths:
        base = path.parent
        paths = []
        for i, f in enumerate(files):
            p = Path(f) if Path(f).is_absolute() else base / f
            if not p.is_file():
                raise DatasetError(f"{path}: {row_label(i)}: video file {p} not found")
            paths.append(str(p))
    elif video_dir is not None and videos is not False:
        vdir = Path(video_dir)
        paths = resolve_videos(
            ids, [f"{i}{VIDEO_EXTENSIONS[0]}" for i in ids], vdir, True, path,
            candidates=[[i, *(f"{i}{e}" for e in VIDEO_EXTENSIONS[1:])] for i in ids],
        )  # fmt: skip
    elif videos:
        raise DatasetError(
            f"{path}: videos expected but there is no {path_column} column and no video folder"
        )

    caps = None
    if caption_columns:
        values = df[list(caption_columns)].to_numpy(dtype=object)
        caps = [clean_captions(list(row), path, row_label(i)) for i, row in enumerate(values)]

    split = None
    if split_column:
        split = []
        for i, s in enumerate(df[split_column].tolist()):
            if not isinstance(s, str) or not s.strip():
                raise DatasetError(f"{path}: {row_label(i)}: empty {split_column}")
            split.append(s.strip())

    return Dataset(
        name=name or path.stem,
        ids=ids,
        scores=table,
        paths=paths,
        captions=caps,
        split=split,
        sources=[str(path)],
    )


@register_dataset("csv", target_option="scores")
def read_labels_csv(path: str | Path, scores: str | Sequence[str], **options: Any) -> Dataset:
    """A labels CSV to fit on: the generic reader, where an empty score marks an unlabelled video."""
    try:
        inspect.signature(read_generic_csv).bind(path, scores, allow_missing=True, **options)
    except TypeError as exc:  # an option the generic reader does not take
        raise DatasetError(f"dataset layout 'csv': {exc}") from None
    return read_generic_csv(path, scores, allow_missing=True, **options)

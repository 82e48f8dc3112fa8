"""Caption tables in the layouts real releases use, read into video id -> list of captions.

- wide: `video_id, description_0 ... description_4` (Memento10k in MediaEval 2021 and the
  realbench copy), or `caption_0 ...`;
- long: `video_id, description` with one row per caption, a video on several rows (TRECVid
  in MediaEval 2021), or `video_id, caption`;
- one text per video: `video_id, title` (VideoMem's stock-footage titles) or `video_id, text`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from tiermem.datasets.record import clean_captions, read_csv, require_columns, row_label
from tiermem.errors import DatasetError

_WIDE = re.compile(r"^(description|caption)_(\d+)$")
_LONG = ("description", "caption", "title", "text")


def caption_columns(df: pd.DataFrame) -> tuple[list[str], bool]:
    """The caption columns of a table and whether one video may span several rows (long form)."""
    wide = sorted((c for c in df.columns if _WIDE.match(str(c))), key=lambda c: int(_WIDE.match(c).group(2)))
    if wide:
        return wide, False
    for name in _LONG:
        if name in df.columns:
            return [name], name in ("description", "caption")
    return [], False


def read_captions_csv(path: str | Path, id_column: str = "video_id") -> dict[str, list[str]]:
    """Read a caption table (any layout above) into {video_id: [captions...]} in file order.

    Fails naming the file and row on a missing id/caption column, an empty id, a video that
    appears twice in a one-row-per-video layout, or a video left with no caption at all.
    """
    path = Path(path)
    df = read_csv(path, dtype=str)
    require_columns(df, [id_column], path)
    cols, multi_row = caption_columns(df)
    if not cols:
        raise DatasetError(
            f"{path}: no caption column (expected description_0.., description, caption, title or text; "
            f"has: {', '.join(map(str, df.columns))})"
        )
    out: dict[str, list[str]] = {}
    ids = df[id_column].tolist()
    values = df[cols].to_numpy(dtype=object)
    for i, (vid, row) in enumerate(zip(ids, values)):
        if vid is None or (isinstance(vid, float)) or not str(vid).strip():
            raise DatasetError(f"{path}: {row_label(i)}: empty {id_column}")
        vid = str(vid).strip()
        caps = clean_captions(list(row), path, row_label(i))
        if vid in out:
            if not multi_row:
                raise DatasetError(f"{path}: {row_label(i)}: duplicate {id_column} {vid!r}")
            out[vid].extend(caps)
        else:
            out[vid] = caps
    empty = [v for v, caps in out.items() if not caps]
    if empty:
        raise DatasetError(f"{path}: video {empty[0]!r} has no non-empty caption ({len(empty)} such videos)")
    return out

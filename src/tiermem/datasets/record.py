"""The one record every dataset reader returns, and the checks all readers share.

A `Dataset` is columns aligned on `ids`: where the videos are (`paths`), what people scored
(`scores`), what people wrote about them (`captions`) and which published split each video
belongs to (`split`). Readers differ only in how they parse a layout; everything after them
(training, benchmarks, the text tier) sees this one shape.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tiermem.errors import DataMismatchError, DatasetError

#: Score columns that count annotations rather than measure memorability.
_COUNT_COLUMN = re.compile(r"^(n|nb|num)_|annotations")
#: Score columns that are decay rates (Memento10k's alpha): any finite real.
_RATE_COLUMN = re.compile(r"alpha")


@dataclass
class Dataset:
    """Videos of one dataset with their labels, aligned on `ids` (strings, unique).

    - `scores`: one float column per target, index = `ids` in order. NaN marks a video whose
      labels are not published (a withheld test split), never a parse failure: readers refuse
      malformed values instead.
    - `paths`: the video file of each id, or None for the whole dataset when no videos are
      expected (e.g. pre-extracted features only).
    - `captions`: the human descriptions of each video (possibly several), or None.
    - `split`: the published split of each video ("train", "val", "dev", "test"), or None.
    - `tables`: pre-extracted feature tables shipped with the dataset, block name -> file.
    - `sources`: the files read, for messages and provenance.
    - `default_target`: the score column a fit learns unless told otherwise (set by
      `read_dataset` from the layout's standard target or the one named).
    """

    name: str
    ids: list[str]
    scores: pd.DataFrame
    paths: list[str] | None = None
    captions: list[list[str]] | None = None
    split: list[str] | None = None
    tables: dict[str, Path] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    default_target: str | None = None  # the score column a fit learns unless told otherwise

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(set(self.ids)) != n:
            dup = sorted({i for i in self.ids if self.ids.count(i) > 1})[:5]
            raise DataMismatchError(f"dataset {self.name}: duplicate video ids {dup}")
        if list(self.scores.index) != list(self.ids):
            raise DataMismatchError(f"dataset {self.name}: scores are not indexed by the dataset's ids")
        for attr in ("paths", "captions", "split"):
            value = getattr(self, attr)
            if value is not None and len(value) != n:
                raise DataMismatchError(f"dataset {self.name}: {len(value)} {attr} for {n} videos")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        splits = ""
        if self.split is not None:
            counts = pd.Series(self.split).value_counts().sort_index()
            splits = ", split=" + "/".join(f"{k}:{v}" for k, v in counts.items())
        return (
            f"Dataset({self.name!r}, {len(self)} videos, targets={self.targets}{splits}, "
            f"videos={'yes' if self.paths is not None else 'no'}, "
            f"captions={'yes' if self.captions is not None else 'no'})"
        )

    @property
    def targets(self) -> list[str]:
        """Names of the score columns."""
        return list(self.scores.columns)

    def target(self, name: str) -> np.ndarray:
        """One score column as float64 (NaN where unlabelled)."""
        if name not in self.scores.columns:
            raise DataMismatchError(
                f"dataset {self.name}: no target {name!r}; available: {', '.join(self.targets) or 'none'}"
            )
        return self.scores[name].to_numpy(dtype=np.float64)

    def select(self, mask: Sequence[bool] | np.ndarray) -> "Dataset":
        """The videos where `mask` is true, every column kept aligned."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise DataMismatchError(f"dataset {self.name}: mask of {mask.shape} for {len(self)} videos")
        idx = np.flatnonzero(mask)
        pick = lambda xs: None if xs is None else [xs[i] for i in idx]  # noqa: E731
        return Dataset(
            name=self.name,
            ids=[self.ids[i] for i in idx],
            scores=self.scores.iloc[idx],
            paths=pick(self.paths),
            captions=pick(self.captions),
            split=pick(self.split),
            tables=dict(self.tables),
            sources=list(self.sources),
            default_target=self.default_target,
        )

    def subset(self, split: str | Iterable[str]) -> "Dataset":
        """The videos of one published split (or several)."""
        if self.split is None:
            raise DataMismatchError(f"dataset {self.name}: has no published split")
        wanted = {split} if isinstance(split, str) else set(split)
        return self.select([s in wanted for s in self.split])

    def labelled(self, target: str) -> "Dataset":
        """The videos that have a score for `target` (drops withheld test videos)."""
        return self.select(np.isfinite(self.target(target)))

    def labels_frame(self) -> pd.DataFrame:
        """`video_id` + score columns (+ `split`), the labels CSV layout `tiermem train` reads."""
        df = self.scores.reset_index(drop=True)
        df.insert(0, "video_id", self.ids)
        if self.split is not None:
            df["split"] = self.split
        return df


# -- shared validation ---------------------------------------------------------------------


def score_kind(column: str) -> str:
    """'count' (annotation counts), 'rate' (decay alpha) or 'memorability' (a share in [0, 1])."""
    low = column.lower()
    if _RATE_COLUMN.search(low):
        return "rate"
    if _COUNT_COLUMN.search(low):
        return "count"
    return "memorability"


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with the failure turned into a one-line `DatasetError` naming the file.

    Only an empty cell is missing: "NA", "n/a", "null" stay text, so a score written that way
    is reported as not a number instead of passing as unlabelled.
    """
    path = Path(path)
    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    kwargs.setdefault("low_memory", False)  # one pass over the file: no DtypeWarning about its chunks
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, not a CSV file")
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{path}: not a readable CSV ({first})") from None


def require_columns(df: pd.DataFrame, columns: Iterable[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns))})"
        )


def row_label(row: int, header: bool = True) -> str:
    """Human row number of a 0-based data row: line numbers count the header as line 1."""
    return f"row {row + 2 if header else row + 1}"


def clean_ids(values: Iterable[object], path: Path, what: str = "video_id", header: bool = True) -> list[str]:
    """Video ids as strings; refuses empty ids and duplicates, naming the row."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "":
            raise DatasetError(f"{path}: {row_label(i, header)}: empty {what}")
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        s = str(v).strip()
        if s in seen:
            raise DatasetError(
                f"{path}: {row_label(i, header)}: duplicate {what} {s!r} (first at {row_label(seen[s], header)})"
            )
        seen[s] = i
        ids.append(s)
    return ids


def clean_scores(
    df: pd.DataFrame,
    columns: Sequence[str],
    path: Path | None,
    *,
    allow_missing: bool = False,
    row_names: Sequence[str] | None = None,
    own_units: bool = False,
) -> pd.DataFrame:
    """Parse score columns to float64 and check each value by its kind (see `score_kind`).

    Memorability must lie in [0, 1] (with `own_units`, a user's scores in any units, such as
    0-100: a fit maps them to [0, 1] as `tiermem.model.scaling` says), counts must be
    non-negative whole numbers, rates finite; no magnitude may pass 1e100 (its errors overflow).
    An empty cell is an error unless `allow_missing` (then it is NaN: not labelled).
    `row_names`, when given, replaces "<path>: row N" in messages (e.g. a JSON entry's file
    and filename).
    """
    out: dict[str, np.ndarray] = {}
    for col in columns:
        raw = df[col].tolist()
        vals = np.empty(len(raw), dtype=np.float64)
        kind = score_kind(col)
        for i, v in enumerate(raw):
            where = row_names[i] if row_names is not None else f"{path}: {row_label(i)}"
            if (
                v is None
                or (isinstance(v, float) and math.isnan(v))
                or (isinstance(v, str) and not v.strip())
            ):
                if allow_missing:
                    vals[i] = np.nan
                    continue
                raise DatasetError(f"{where}: empty {col}")
            if isinstance(v, bool):
                raise DatasetError(f"{where}: {col} is not a number ({v!r})")
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise DatasetError(f"{where}: {col} is not a number ({v!r})") from None
            if not math.isfinite(x):
                raise DatasetError(f"{where}: {col} is not finite ({v!r})")
            if abs(x) > 1e100:
                raise DatasetError(f"{where}: {col} = {x:g} is out of range (errors on it overflow)")
            if kind == "memorability" and not own_units and not 0.0 <= x <= 1.0:
                raise DatasetError(f"{where}: {col} = {x} is outside [0, 1]")
            if kind == "count" and (x < 0 or not x.is_integer()):
                raise DatasetError(f"{where}: {col} = {x} is not a non-negative whole count")
            vals[i] = x
        out[col] = vals
    return pd.DataFrame(out)


def clean_captions(values: Sequence[object], path: Path, where: str) -> list[str]:
    """Non-empty caption strings; a present-but-empty caption is dropped, a non-string refused."""
    caps: list[str] = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if not isinstance(v, str):
            raise DatasetError(f"{path}: {where}: caption is not text ({v!r})")
        if v.strip():
            caps.append(v.strip())
    return caps


def resolve_videos(
    ids: Sequence[str],
    names: Sequence[str],
    video_dir: Path,
    expect: bool | None,
    listing: Path,
    candidates: Sequence[Sequence[str]] | None = None,
) -> list[str] | None:
    """Video paths under `video_dir`, or None when no videos are expected.

    `expect=None` expects videos only when `video_dir` exists; `True` requires them (a missing
    directory or file is an error naming the id); `False` never looks. `candidates[i]` lists
    alternative file names for video i (e.g. the .mp4 re-encode of a .webm original).
    """
    if expect is False or (expect is None and not video_dir.is_dir()):
        return None
    if not video_dir.is_dir():
        raise DatasetError(f"{video_dir}: video directory not found (videos expected for {listing})")
    present = {p.name for p in video_dir.iterdir()}
    paths: list[str] = []
    for i, (vid, name) in enumerate(zip(ids, names)):
        options = [name, *(candidates[i] if candidates is not None else ())]
        hit = next((o for o in options if o in present), None)
        if hit is None:
            raise DatasetError(f"{listing}: video {vid}: file {video_dir / name} not found")
        paths.append(str(video_dir / hit))
    return paths

"""Feature blocks: named per-video feature tables, the head's inputs, joined on ``video_id``.

A block comes from a precomputed table (Parquet, CSV, or a directory of ``<video_id>.npy``
vectors) or from a feature-store Parquet table written by ``tiermem extract``, whose
bookkeeping columns (path, content_hash, config_hash, facts) are not features and are dropped.
Joining refuses anything that does not line up (missing or duplicate ids, NaN/inf,
non-numeric columns, wrong dimension) with a one-line `DataMismatchError`, and never drops
a row without saying how many and which.

    >>> coco = load_block(realbench / "videomem" / "features_coco80_rn152.parquet")
    >>> titles_ids = coco.ids[:100]
    >>> joined = join_blocks([coco], ids=titles_ids)
    >>> joined.X.shape, joined.slices["coco80_rn152"]
    ((100, 80), slice(0, 80, None))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tiermem.errors import DataMismatchError, duplicated, first_few

ID_COLUMN = "video_id"
#: Columns of a feature-store table that describe a row rather than the video's features.
STORE_COLUMNS = ("path", "content_hash", "config_hash", "facts")
TABLE_SUFFIXES = (".parquet", ".pq", ".csv")
#: The block a pipeline appends after its tiers: the distinctiveness features.
DISTINCT_BLOCK = "distinct"


@dataclass(frozen=True)
class Block:
    """One feature block: `values[i]` (float32, len(feature_names)) belongs to video `ids[i]`."""

    name: str
    ids: np.ndarray  # str, unique
    feature_names: list[str]
    values: np.ndarray  # (N, D) float32, finite
    source: str = ""  # where it was read from, for error messages

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclass(frozen=True)
class BlockLayout:
    """The order and columns of blocks a head was trained on (saved with the head)."""

    name: str
    feature_names: list[str]

    def to_dict(self) -> dict:
        return {"name": self.name, "feature_names": list(self.feature_names)}

    @classmethod
    def from_dict(cls, d: dict) -> "BlockLayout":
        return cls(name=str(d["name"]), feature_names=[str(f) for f in d["feature_names"]])

    @staticmethod
    def slices(layout: Sequence["BlockLayout"]) -> dict[str, slice]:
        """Each block's columns in a design matrix laid out as `layout`, by block name.

        >>> BlockLayout.slices([BlockLayout("low", ["a", "b"]), BlockLayout("mid", ["c"])])
        {'low': slice(0, 2, None), 'mid': slice(2, 3, None)}
        """
        slices, start = {}, 0
        for block in layout:
            slices[block.name] = slice(start, start + len(block.feature_names))
            start += len(block.feature_names)
        return slices


@dataclass(frozen=True)
class JoinedBlocks:
    """Blocks aligned on ids: `X[:, slices[name]]` holds block `name` for video `ids[i]`."""

    ids: np.ndarray
    X: np.ndarray  # (N, sum D) float32
    slices: dict[str, slice]
    layout: list[BlockLayout]
    rows: np.ndarray  # positions of `ids` in the requested ids (all of them unless dropping)
    dropped: list[str] = field(default_factory=list)  # requested ids dropped (on_missing="drop")

    @property
    def feature_names(self) -> list[str]:
        return [f for b in self.layout for f in b.feature_names]


def default_block_name(path: str | Path) -> str:
    """``features_coco80_rn152.parquet`` -> ``coco80_rn152``: the realbench naming."""
    stem = Path(path).name
    for suffix in TABLE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem.removeprefix("features_")


def parse_block_spec(spec: str) -> tuple[str, Path]:
    """``NAME=TABLE`` (or just ``TABLE``, named after the file) -> (name, path)."""
    name, sep, path = spec.partition("=")
    if not sep:
        return default_block_name(spec), Path(spec)
    if not name or not path:
        raise DataMismatchError(f"block {spec!r}: expected NAME=TABLE")
    return name, Path(path)


# -- reading ------------------------------------------------------------------------------


def load_block(path: str | Path, name: str | None = None) -> Block:
    """Read a block from a Parquet/CSV table or a directory of ``<video_id>.npy`` vectors."""
    path = Path(path)
    name = name or default_block_name(path)
    if path.is_dir():
        return _load_npy_dir(path, name)
    if not path.is_file():
        raise DataMismatchError(f"block {name!r}: {path}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            df = pq.read_table(path).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise DataMismatchError(f"block {name!r}: {path}: not a readable Parquet table ({exc})") from None
    elif suffix == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(path, dtype={ID_COLUMN: str}, low_memory=False)  # no DtypeWarning
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataMismatchError(
                f"block {name!r}: {path}: not a readable CSV ({str(exc).splitlines()[0]})"
            ) from None
    else:
        raise DataMismatchError(
            f"block {name!r}: {path}: unknown table format {suffix!r} (use .parquet, .csv or a directory of .npy)"
        )
    return _block_from_frame(df, name, str(path))


def _block_from_frame(df, name: str, source: str) -> Block:  # df: pandas.DataFrame
    import pandas as pd

    where = f"block {name!r}: {source}"
    if ID_COLUMN not in df.columns:
        raise DataMismatchError(f"{where}: no {ID_COLUMN!r} column")
    if df[ID_COLUMN].isna().any():
        row = int(np.flatnonzero(df[ID_COLUMN].isna().to_numpy())[0])
        raise DataMismatchError(f"{where}: empty {ID_COLUMN} at row {row}")
    ids = df[ID_COLUMN].astype(str).to_numpy().astype(str)
    features = df.drop(columns=[ID_COLUMN, *(c for c in STORE_COLUMNS if c in df.columns)])
    if features.shape[1] == 0:
        raise DataMismatchError(f"{where}: no feature columns besides {ID_COLUMN}")
    if len(df) == 0:
        raise DataMismatchError(f"{where}: no rows")
    for col in features.columns:
        s = features[col]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            conv = pd.to_numeric(s, errors="coerce")
            bad = np.flatnonzero(conv.isna().to_numpy() & s.notna().to_numpy())
            row = int(bad[0]) if bad.size else 0
            raise DataMismatchError(
                f"{where}: column {col!r} is not numeric (row {row}, {ID_COLUMN}={ids[row]}: {s.iloc[row]!r})"
            )
    values = features.to_numpy(dtype=np.float32)
    return _checked(Block(name, ids, [str(c) for c in features.columns], values, source))


def _load_npy_dir(path: Path, name: str) -> Block:
    files = sorted(path.glob("*.npy"))
    where = f"block {name!r}: {path}"
    if not files:
        raise DataMismatchError(f"{where}: directory holds no .npy files")
    rows: list[np.ndarray] = []
    dim: int | None = None
    for f in files:
        try:
            v = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataMismatchError(f"block {name!r}: {f}: not a readable .npy array ({exc})") from None
        if v.ndim == 2 and v.shape[0] == 1:
            v = v[0]
        if v.ndim != 1:
            raise DataMismatchError(
                f"block {name!r}: {f}: expected a 1-D feature vector, got shape {v.shape}"
            )
        if not np.issubdtype(v.dtype, np.number) and v.dtype != np.bool_:
            raise DataMismatchError(f"block {name!r}: {f}: not numeric (dtype {v.dtype})")
        if dim is None:
            dim = v.shape[0]
        elif v.shape[0] != dim:
            raise DataMismatchError(
                f"block {name!r}: {f}: {v.shape[0]} features, but {files[0].name} has {dim}"
            )
        rows.append(v.astype(np.float32))
    ids = np.array([f.stem for f in files], dtype=str)
    names = [f"{name}_{i}" for i in range(dim or 0)]
    return _checked(Block(name, ids, names, np.stack(rows), str(path)))


def _checked(block: Block) -> Block:
    """Refuse duplicate ids and non-finite values, naming the ids/columns."""
    where = f"block {block.name!r}: {block.source}"
    dup = duplicated(block.ids)
    if dup:
        raise DataMismatchError(f"{where}: {len(dup)} duplicate {ID_COLUMN}s: {first_few(dup)}")
    bad = ~np.isfinite(block.values)
    if bad.any():
        r, c = (int(i[0]) for i in np.nonzero(bad))
        raise DataMismatchError(
            f"{where}: {int(bad.sum())} NaN/inf values, first in column "
            f"{block.feature_names[c]!r} at {ID_COLUMN}={block.ids[r]} ({block.values[r, c]})"
        )
    return block


# -- joining ------------------------------------------------------------------------------


def join_blocks(
    blocks: Sequence[Block],
    ids: Sequence[str] | np.ndarray,
    *,
    layout: Sequence[BlockLayout] | None = None,
    on_missing: str = "raise",
) -> JoinedBlocks:
    """Align `blocks` on the requested `ids` (row order follows `ids`).

    `layout` (a trained head's) fixes block order and checks each block's columns.
    Ids missing from a block raise `DataMismatchError` (how many, first few), or with
    ``on_missing="drop"`` are dropped and listed in `JoinedBlocks.dropped`: never silently.
    """
    if on_missing not in ("raise", "drop"):
        raise ValueError(f"on_missing must be 'raise' or 'drop', got {on_missing!r}")
    if not blocks:
        raise DataMismatchError("no feature blocks given")
    ids = np.asarray(ids).astype(str)
    if ids.size == 0:
        raise DataMismatchError("no video_ids to join: the list of videos to use is empty")
    dup = duplicated(ids)
    if dup:
        raise DataMismatchError(f"{len(dup)} duplicate {ID_COLUMN}s requested: {first_few(dup)}")
    names = [b.name for b in blocks]
    dup_names = sorted({n for n in names if names.count(n) > 1})
    if dup_names:
        raise DataMismatchError(f"block name given more than once: {', '.join(dup_names)}")
    if layout is not None:
        blocks = _order_by_layout(blocks, layout)

    keep = np.ones(ids.size, dtype=bool)
    positions: list[np.ndarray] = []
    for b in blocks:
        index = {v: i for i, v in enumerate(b.ids)}
        pos = np.fromiter((index.get(v, -1) for v in ids), dtype=np.int64, count=ids.size)
        missing = pos < 0
        if missing.any() and on_missing == "raise":
            raise DataMismatchError(
                f"block {b.name!r} ({b.source}) lacks {int(missing.sum())} of {ids.size} "
                f"{ID_COLUMN}s: {first_few(list(ids[missing]))}"
            )
        keep &= ~missing
        positions.append(pos)
    if not keep.any():
        raise DataMismatchError(f"no {ID_COLUMN} is present in every block ({', '.join(names)})")
    rows = np.flatnonzero(keep)
    joined_layout = [BlockLayout(b.name, list(b.feature_names)) for b in blocks]
    return JoinedBlocks(
        ids=ids[rows],
        X=np.ascontiguousarray(
            np.concatenate([b.values[pos[rows]] for b, pos in zip(blocks, positions)], axis=1),
            dtype=np.float32,
        ),
        slices=BlockLayout.slices(joined_layout),
        layout=joined_layout,
        rows=rows,
        dropped=[str(v) for v in ids[~keep]],
    )


def _order_by_layout(blocks: Sequence[Block], layout: Sequence[BlockLayout]) -> list[Block]:
    by_name = {b.name: b for b in blocks}
    expected = [spec.name for spec in layout]
    absent = [n for n in expected if n not in by_name]
    extra = [n for n in by_name if n not in expected]
    if absent or extra:
        parts = []
        if absent:
            parts.append(f"missing block(s) {', '.join(absent)}")
        if extra:
            parts.append(f"unexpected block(s) {', '.join(extra)}")
        raise DataMismatchError(f"the model was trained on blocks {', '.join(expected)}: {'; '.join(parts)}")
    ordered = []
    for spec in layout:
        b = by_name[spec.name]
        if b.dim != len(spec.feature_names):
            raise DataMismatchError(
                f"block {b.name!r} ({b.source}) has {b.dim} features; the model expects "
                f"{len(spec.feature_names)} features of block {b.name!r}"
            )
        if list(b.feature_names) != list(spec.feature_names):
            i = next(i for i, (x, y) in enumerate(zip(b.feature_names, spec.feature_names)) if x != y)
            raise DataMismatchError(
                f"block {b.name!r} ({b.source}): column {i} is {b.feature_names[i]!r}; the model "
                f"expects {spec.feature_names[i]!r}"
            )
        ordered.append(b)
    return ordered


__all__ = [
    "Block",
    "BlockLayout",
    "DISTINCT_BLOCK",
    "ID_COLUMN",
    "JoinedBlocks",
    "STORE_COLUMNS",
    "default_block_name",
    "join_blocks",
    "load_block",
    "parse_block_spec",
]

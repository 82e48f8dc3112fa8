"""The feature cache: one Parquet table per tier, keyed by video id, file content and tier config.

Layout of a store directory::

    <root>/<tier>.parquet      video_id, path, content_hash, config_hash, facts, <feature columns...>
    <root>/<tier>.state.npz    the tier's fitted state (arrays + a JSON record), when it has one

A row is reused only when both the file's bytes (`content_hash`) and the extraction setting
(`config_hash`: tier config, fitted state, decode options) are unchanged, so a rerun skips
finished videos and recomputes the rest.

Every write replaces the file atomically (temporary file in the same directory, fsync,
`os.replace`, fsync of the directory): a process killed at any instant leaves either the old
table or the new one, never a torn file. Long runs flush periodically (`TableWriter`), so a
killed run loses at most the rows since the last flush. This module is the only code in
tiermem that writes Parquet.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tiermem.atomic import atomic_write, fsync_dir
from tiermem.errors import DataMismatchError, TiermemError

#: Bumped when the table or state layout changes incompatibly.
SCHEMA_VERSION = 1
#: Columns every tier table starts with, in this order; the rest are float32 features.
KEY_COLUMNS = ("video_id", "path", "content_hash", "config_hash", "facts")
_META_KEY = b"tiermem"
_STATE_META = "__tiermem_state__"
_HASH_CHUNK = 1 << 20


def content_hash(path: str | os.PathLike[str]) -> str:
    """blake2b of the file's bytes (read in 1 MiB chunks): the cache key that survives renames."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class FeatureRow:
    """One video's output from one tier, ready to be stored."""

    video_id: str
    path: str
    content_hash: str
    config_hash: str
    values: np.ndarray  # (D,) in the tier's feature_names order
    facts: dict[str, Any] = field(default_factory=dict)


class FeatureStore:
    """A directory of per-tier Parquet tables plus the fitted tier state that produced them."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._keys: dict[str, dict[str, tuple[str, str]]] = {}

    # -- paths ---------------------------------------------------------------------------
    def table_path(self, tier: str) -> Path:
        return self.root / f"{tier}.parquet"

    def state_path(self, tier: str) -> Path:
        return self.root / f"{tier}.state.npz"

    def _ensure_root(self) -> None:
        """Create the store directory, or say in one line why `root` cannot be one."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise TiermemError(
                f"{self.root}: is a file, not a directory (the feature store is a directory)"
            ) from None
        except OSError as exc:
            raise TiermemError(
                f"{self.root}: cannot create the feature store directory ({exc.strerror or exc})"
            ) from None

    def tiers(self) -> list[str]:
        """Names of the tiers that have a table here."""
        if not self.root.is_dir():
            return []
        return sorted(p.name[: -len(".parquet")] for p in self.root.glob("*.parquet"))

    # -- reading -------------------------------------------------------------------------
    def table(self, tier: str) -> pd.DataFrame | None:
        """The tier's table (one row per video, sorted by video_id), or None when absent."""
        path = self.table_path(tier)
        if not path.exists():
            return None
        try:
            return pq.read_table(path).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise DataMismatchError(f"{path}: not a readable feature table ({exc})") from None

    def feature_names(self, tier: str) -> list[str]:
        """Feature columns of the tier's table, in order (empty when the table is absent)."""
        path = self.table_path(tier)
        if not path.exists():
            return []
        names = pq.read_schema(path).names
        return [n for n in names if n not in KEY_COLUMNS]

    def _key_index(self, tier: str) -> dict[str, tuple[str, str]]:
        if tier not in self._keys:
            path = self.table_path(tier)
            index: dict[str, tuple[str, str]] = {}
            if path.exists():
                try:
                    keys = pq.read_table(path, columns=["video_id", "content_hash", "config_hash"])
                except (pa.ArrowException, OSError) as exc:
                    raise DataMismatchError(f"{path}: not a readable feature table ({exc})") from None
                for vid, ch, cfg in zip(*(keys.column(i).to_pylist() for i in range(3))):
                    index[vid] = (ch, cfg)
            self._keys[tier] = index
        return self._keys[tier]

    def cached(self, tier: str, video_id: str, content_hash: str, config_hash: str) -> bool:
        """True when the table already holds this video computed from these bytes and this config."""
        return self._key_index(tier).get(video_id) == (content_hash, config_hash)

    def unreadable_table(self, tier: str) -> str | None:
        """Why the tier's table cannot be read (truncated, not Parquet), or None when it reads or is absent."""
        path = self.table_path(tier)
        if not path.exists():
            return None
        try:
            pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None

    def set_aside(self, path: Path) -> Path:
        """Rename a damaged file of this store to ``<name>.corrupt-<local time>``, kept for inspection.

        A run then rebuilds what the file held; the store forgets what it had read of it.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        os.replace(path, target)
        fsync_dir(path.parent)
        self._keys.clear()
        return target

    # -- writing -------------------------------------------------------------------------
    def write(self, tier: str, rows: Sequence[FeatureRow], feature_names: Sequence[str]) -> Path:
        """Merge `rows` into the tier's table (a row replaces the same video_id) and save it atomically.

        Existing rows whose feature columns differ from `feature_names` were produced by
        another tier configuration; they can never be cache hits, so they are dropped.
        """
        feature_names = list(feature_names)
        _check_feature_names(tier, feature_names)
        rows = list({r.video_id: r for r in rows}.values())  # the last row for a video wins
        new = _rows_to_arrow(tier, rows, feature_names)
        old = self._read_arrow(tier)
        if old is not None and old.schema.names == new.schema.names:
            replaced = pa.array([r.video_id for r in rows], type=pa.string())
            keep = pc.invert(pc.is_in(old.column("video_id"), value_set=replaced))
            merged = pa.concat_tables([old.filter(keep), new.cast(old.schema)])
        else:
            merged = new
        merged = merged.sort_by("video_id")
        meta = {
            "schema_version": SCHEMA_VERSION,
            "tier": tier,
            "feature_names": feature_names,
        }
        merged = merged.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
        self._ensure_root()
        atomic_write(self.table_path(tier), lambda f: pq.write_table(merged, f))
        index = self._key_index(tier)
        index.clear()
        vids, chs, cfgs = (merged.column(c).to_pylist() for c in ("video_id", "content_hash", "config_hash"))
        index.update({v: (c, g) for v, c, g in zip(vids, chs, cfgs)})
        return self.table_path(tier)

    def _read_arrow(self, tier: str) -> pa.Table | None:
        path = self.table_path(tier)
        if not path.exists():
            return None
        try:
            return pq.read_table(path).replace_schema_metadata(None)
        except (pa.ArrowException, OSError) as exc:
            raise DataMismatchError(f"{path}: not a readable feature table ({exc})") from None

    def writer(
        self,
        tier: str,
        feature_names: Sequence[str],
        flush_every: int = 64,
        flush_seconds: float = 10.0,
    ) -> "TableWriter":
        """An appender that saves the table every `flush_every` rows or `flush_seconds` seconds."""
        return TableWriter(self, tier, feature_names, flush_every, flush_seconds)

    # -- fitted tier state ---------------------------------------------------------------
    def save_state(self, tier: str, state: dict[str, Any], config: dict[str, Any] | None = None) -> Path:
        """Save a tier's `state_dict()` as one npz (arrays + a JSON record), atomically, no pickle.

        `config` records how the state was fitted (tier config, frame size, ...) so a later run
        can tell whether it still applies. One file rather than npz + JSON so that a kill can
        never leave the two out of step.
        """
        arrays: dict[str, np.ndarray] = {}
        values: dict[str, Any] = {}
        for key, value in state.items():
            if key == _STATE_META:
                raise TiermemError(f"tier {tier}: state key {_STATE_META!r} is reserved")
            if isinstance(value, np.ndarray):
                if value.dtype == object:
                    raise TiermemError(f"tier {tier}: state {key!r} is an object array (would need pickle)")
                arrays[key] = value
            else:
                values[key] = value
        record = {
            "schema_version": SCHEMA_VERSION,
            "tier": tier,
            "config": config or {},
            "values": values,
        }
        arrays[_STATE_META] = np.array(json.dumps(record, sort_keys=True, default=_json_default))
        self._ensure_root()
        path = self.state_path(tier)
        atomic_write(path, lambda f: np.savez(f, **arrays))
        return path

    def load_state(self, tier: str) -> "SavedState | None":
        """The state saved by `save_state`, or None when this store has none for the tier."""
        path = self.state_path(tier)
        if not path.exists():
            return None
        return load_state_file(path, tier)

    # -- concurrency ---------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's write lock (one writing process at a time); freed even on SIGKILL.

        A `root` that is a file, or a place where nothing may be created, is refused here in
        one line, before anything is written.
        """
        self._ensure_root()
        try:
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TiermemError(
                f"{self.root}: cannot write to the feature store ({exc.strerror or exc})"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TiermemError(f"{self.root}: another tiermem process is writing to this store") from None
            # Temporary files left by a run that was killed mid-write are garbage now.
            for tmp in self.root.glob(".*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            yield
        finally:
            os.close(fd)


@dataclass
class SavedState:
    """A tier's fitted state as saved: `state` for `load_state_dict`, `config` as it was fitted."""

    tier: str
    state: dict[str, Any]
    config: dict[str, Any]
    source: str = ""  # the file it was read from, named when it does not fit a tier

    def apply(self, tier: Any) -> Any:
        """`tier.load_state_dict` of this state; a state that does not fit names its file."""
        try:
            return tier.load_state_dict(self.state)
        except (DataMismatchError, KeyError) as exc:
            what = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise DataMismatchError(f"{self.source or 'a saved tier state'}: {what}") from None


def load_state_file(path: str | os.PathLike[str], tier: str | None = None) -> SavedState:
    """Read a state npz written by `FeatureStore.save_state` (never unpickles anything)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:  # opened here so that it is closed even when np.load fails
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array
                raise DataMismatchError(
                    f"{path}: not a tiermem tier state file (one array, not an npz archive)"
                )
            with loaded as npz:
                arrays = {k: npz[k] for k in npz.files}
        record = json.loads(str(arrays.pop(_STATE_META))) if _STATE_META in arrays else None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        # A truncated or overwritten file: the zip directory, a member or the record is damaged.
        raise DataMismatchError(
            f"{path}: not a tiermem tier state file, or a truncated one ({exc})"
        ) from None
    if not isinstance(record, dict):
        raise DataMismatchError(f"{path}: not a tiermem tier state file (no {_STATE_META} record)")
    if record.get("schema_version") != SCHEMA_VERSION:
        raise DataMismatchError(
            f"{path}: state schema version {record.get('schema_version')}, this tiermem reads {SCHEMA_VERSION}"
        )
    if tier is not None and record.get("tier") != tier:
        raise DataMismatchError(f"{path}: holds the state of tier {record.get('tier')!r}, not {tier!r}")
    return SavedState(
        tier=record["tier"], state={**arrays, **record["values"]}, config=record["config"], source=str(path)
    )


class TableWriter:
    """Collects rows for one tier and flushes them to the store as the run goes.

    Each flush rewrites the whole table (a few MB for 10k videos) atomically, so the interval
    also stretches to at least 10x the last write's duration: writing stays under ~10% of a run
    however large the table grows.
    """

    def __init__(
        self,
        store: FeatureStore,
        tier: str,
        feature_names: Sequence[str],
        flush_every: int = 64,
        flush_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.tier = tier
        self.feature_names = list(feature_names)
        self.flush_every = max(1, flush_every)
        self.flush_seconds = flush_seconds
        self._pending: list[FeatureRow] = []
        self._last_flush = time.monotonic()
        self._last_cost = 0.0
        self.flushes = 0

    def add(self, row: FeatureRow) -> None:
        self._pending.append(row)
        elapsed = time.monotonic() - self._last_flush
        if elapsed >= 10 * self._last_cost and (
            len(self._pending) >= self.flush_every or elapsed >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        start = time.monotonic()
        self.store.write(self.tier, self._pending, self.feature_names)
        self._pending = []
        self._last_flush = time.monotonic()
        self._last_cost = self._last_flush - start
        self.flushes += 1

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        # Flush even when the run stops on an error: finished rows are still good rows.
        self.flush()


def _check_feature_names(tier: str, names: list[str]) -> None:
    clash = sorted(set(names) & set(KEY_COLUMNS))
    if clash:
        raise DataMismatchError(f"tier {tier}: feature names {clash} clash with the store's key columns")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataMismatchError(f"tier {tier}: duplicate feature names {dup}")


def _rows_to_arrow(tier: str, rows: Sequence[FeatureRow], feature_names: list[str]) -> pa.Table:
    d = len(feature_names)
    values = np.zeros((len(rows), d), dtype=np.float32)
    for i, row in enumerate(rows):
        v = np.asarray(row.values, dtype=np.float32).reshape(-1)
        if v.shape[0] != d:
            raise DataMismatchError(
                f"tier {tier}: video {row.video_id} has {v.shape[0]} values for {d} feature names"
            )
        values[i] = v
    columns: dict[str, pa.Array] = {
        "video_id": pa.array([r.video_id for r in rows], type=pa.string()),
        "path": pa.array([r.path for r in rows], type=pa.string()),
        "content_hash": pa.array([r.content_hash for r in rows], type=pa.string()),
        "config_hash": pa.array([r.config_hash for r in rows], type=pa.string()),
        "facts": pa.array([facts_json(r.facts) for r in rows], type=pa.string()),
    }
    for j, name in enumerate(feature_names):
        columns[name] = pa.array(values[:, j], type=pa.float32())
    return pa.table(columns)


def facts_json(facts: dict[str, Any] | None) -> str:
    """A row's facts as the store keeps them: JSON with sorted keys, numpy values made plain."""
    return json.dumps(facts or {}, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    """numpy scalars/arrays in facts or state values become plain JSON."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

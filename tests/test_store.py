"""The feature store on its own: atomic tables, cache keys, fitted state, kill safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.store import KEY_COLUMNS, FeatureRow, FeatureStore, content_hash, load_state_file

NAMES = ["brightness_mean", "contrast_mean", "flow_mean"]


def _row(vid: str, value: float, config: str = "cfg1", facts: dict | None = None) -> FeatureRow:
    return FeatureRow(
        video_id=vid,
        path=f"/videos/{vid}.mp4",
        content_hash=f"hash-{vid}",
        config_hash=config,
        values=np.array([value, value + 1, value + 2], dtype=np.float64),
        facts=facts or {},
    )


def test_content_hash_follows_bytes_not_name(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    payload = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    a.write_bytes(payload)
    b.write_bytes(payload)
    c.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(c)


def test_write_then_read_has_key_columns_float32_features_sorted_ids(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "out")
    assert store.table("low") is None
    store.write("low", [_row("b", 2.0, facts={"faces": np.int64(3)}), _row("a", 1.0)], NAMES)
    df = store.table("low")
    assert list(df.columns) == [*KEY_COLUMNS, *NAMES]
    assert list(df["video_id"]) == ["a", "b"]
    assert all(df[n].dtype == np.float32 for n in NAMES)
    assert df.loc[df.video_id == "b", "contrast_mean"].item() == pytest.approx(3.0)
    assert json.loads(df.loc[df.video_id == "b", "facts"].item()) == {"faces": 3}
    assert df.loc[df.video_id == "a", "facts"].item() == "{}"
    assert store.feature_names("low") == NAMES
    assert store.tiers() == ["low"]
    meta = json.loads(pq.read_schema(store.table_path("low")).metadata[b"tiermem"])
    assert meta["tier"] == "low" and meta["feature_names"] == NAMES


def test_cache_keys_and_replacement_by_video_id(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    store.write("low", [_row("a", 1.0), _row("b", 2.0)], NAMES)
    fresh = FeatureStore(tmp_path)  # keys come from disk, not from the writer's memory
    assert fresh.cached("low", "a", "hash-a", "cfg1")
    assert not fresh.cached("low", "a", "hash-a", "cfg2")  # config changed
    assert not fresh.cached("low", "a", "other-bytes", "cfg1")  # file changed
    assert not fresh.cached("low", "c", "hash-c", "cfg1")  # never seen
    assert not fresh.cached("mid", "a", "hash-a", "cfg1")  # other tier
    fresh.write("low", [_row("a", 10.0, config="cfg2")], NAMES)
    assert fresh.cached("low", "a", "hash-a", "cfg2")
    df = FeatureStore(tmp_path).table("low")
    assert list(df["video_id"]) == ["a", "b"]  # b kept, a replaced, no duplicate
    assert df.loc[df.video_id == "a", "brightness_mean"].item() == pytest.approx(10.0)
    assert df.loc[df.video_id == "b", "brightness_mean"].item() == pytest.approx(2.0)


def test_rows_from_another_feature_layout_are_dropped(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    store.write("low", [_row("a", 1.0), _row("b", 2.0)], NAMES)
    other = FeatureRow("a", "/videos/a.mp4", "hash-a", "cfg9", np.array([5.0, 6.0]))
    store.write("low", [other], ["x_mean", "y_mean"])
    df = store.table("low")
    assert list(df.columns) == [*KEY_COLUMNS, "x_mean", "y_mean"]
    assert list(df["video_id"]) == ["a"]


def test_bad_rows_are_refused_and_leave_the_table_alone(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    store.write("low", [_row("a", 1.0)], NAMES)
    before = store.table_path("low").read_bytes()
    with pytest.raises(DataMismatchError, match="video b has 2 values for 3 feature names"):
        store.write("low", [FeatureRow("b", "b.mp4", "h", "c", np.zeros(2))], NAMES)
    with pytest.raises(DataMismatchError, match="clash"):
        store.write("low", [_row("a", 1.0)], ["video_id", "x", "y"])
    assert store.table_path("low").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_unreadable_table_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "low.parquet").write_text("not parquet")
    with pytest.raises(DataMismatchError, match="low.parquet: not a readable feature table"):
        FeatureStore(tmp_path).table("low")


def test_state_round_trip_without_pickle(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    assert store.load_state("low") is None
    components = np.arange(12, dtype=np.float32).reshape(3, 4)
    state = {"pca_components": components, "pca_mean": np.ones(4), "n_samples": 123, "note": "x"}
    path = store.save_state("low", state, config={"decode": {"size": 256}})
    saved = store.load_state("low")
    assert saved.tier == "low" and saved.config == {"decode": {"size": 256}}
    loaded = saved.state
    assert set(loaded) == set(state)
    np.testing.assert_array_equal(loaded["pca_components"], components)
    assert loaded["pca_components"].dtype == np.float32
    assert loaded["n_samples"] == 123 and loaded["note"] == "x"
    with np.load(path, allow_pickle=False) as npz:  # plain npz, readable without tiermem
        assert "pca_mean" in npz.files
    with pytest.raises(DataMismatchError, match="holds the state of tier 'low', not 'mid'"):
        load_state_file(path, "mid")
    with pytest.raises(TiermemError, match="object array"):
        store.save_state("low", {"bad": np.array([{"a": 1}], dtype=object)})
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataMismatchError, match="junk.npz: not a tiermem tier state file"):
        load_state_file(tmp_path / "junk.npz")


def test_writer_flushes_every_n_rows_and_on_exit(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    with store.writer("low", NAMES, flush_every=2, flush_seconds=3600) as w:
        w.add(_row("a", 1.0))
        assert store.table("low") is None
        w.add(_row("b", 2.0))
        assert len(store.table("low")) == 2
        w.add(_row("c", 3.0))
        assert len(store.table("low")) == 2
    assert list(store.table("low")["video_id"]) == ["a", "b", "c"]
    assert w.flushes == 2


def test_second_writer_process_is_refused(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    with store.lock():
        with pytest.raises(TiermemError, match="another tiermem process is writing"):
            with FeatureStore(tmp_path).lock():
                pass
    with store.lock():  # released
        pass


_WRITER = textwrap.dedent(
    """
    import itertools, sys, numpy as np
    from tiermem.store import FeatureStore, FeatureRow
    store = FeatureStore(sys.argv[1])
    names = [f"f{i}" for i in range(200)]
    with store.lock(), store.writer("low", names, flush_every=1) as w:
        for i in itertools.count():
            w.add(FeatureRow(f"v{i:06d}", "p", f"h{i}", "c", np.full(200, i, dtype=np.float32)))
    """
)


def test_table_survives_sigkill_at_any_moment(tmp_path: Path) -> None:
    """A writer flushing after every row, killed at arbitrary instants: the table is always whole."""
    out = tmp_path / "out"
    counts = []
    for delay in (0.35, 0.6, 0.85):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out)])
        table = out / "low.parquet"
        deadline = time.monotonic() + 60
        before = table.stat().st_ino if table.exists() else None
        while time.monotonic() < deadline:  # wait until this process has flushed at least once
            if table.exists() and table.stat().st_ino != before:
                break
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, "the writer stopped before it was killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        df = FeatureStore(out).table("low")  # must parse
        n = len(df)
        counts.append(n)
        # every row present and exactly the i-th row; the rerun resumed from the same table
        assert list(df["video_id"]) == [f"v{i:06d}" for i in range(n)]
        np.testing.assert_array_equal(df["f7"].to_numpy(), np.arange(n, dtype=np.float32))
    assert counts[0] > 0
    # a later run rewrites the same rows (replacement by video_id), never duplicates them
    assert all(c > 0 for c in counts)

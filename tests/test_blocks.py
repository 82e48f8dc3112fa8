"""Feature blocks: every table format reads the same; every bad table is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tiermem.blocks import (
    STORE_COLUMNS,
    BlockLayout,
    join_blocks,
    load_block,
    parse_block_spec,
)
from tiermem.errors import DataMismatchError
from tiermem.store import KEY_COLUMNS, FeatureRow, FeatureStore

IDS = ["v1", "v2", "v3", "v4"]
VALUES = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def _frame(ids=IDS, values=VALUES, prefix="f") -> pd.DataFrame:
    df = pd.DataFrame(values, columns=[f"{prefix}_{i}" for i in range(values.shape[1])])
    df.insert(0, "video_id", ids)
    return df


def _check(block, name: str) -> None:
    assert block.name == name
    assert list(block.ids) == IDS
    np.testing.assert_allclose(block.values, VALUES)
    assert block.values.dtype == np.float32 and block.dim == 3


def test_parquet_csv_and_npy_dir_read_alike(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "features_obj.parquet")
    _frame().to_csv(tmp_path / "obj.csv", index=False)
    npy = tmp_path / "npy"
    npy.mkdir()
    for vid, row in zip(IDS, VALUES):
        np.save(npy / f"{vid}.npy", row)
    _check(load_block(tmp_path / "features_obj.parquet"), "obj")  # realbench naming
    _check(load_block(tmp_path / "obj.csv", "mid"), "mid")
    b = load_block(npy, "high")
    _check(b, "high")
    assert b.feature_names == ["high_0", "high_1", "high_2"]


def test_feature_store_table_drops_bookkeeping_columns(tmp_path: Path) -> None:
    assert tuple(["video_id", *STORE_COLUMNS]) == KEY_COLUMNS  # same contract as the store
    store = FeatureStore(tmp_path / "store")
    rows = [
        FeatureRow(v, f"/videos/{v}.mp4", f"h{v}", "cfg", VALUES[i], {"faces": i}) for i, v in enumerate(IDS)
    ]
    path = store.write("low", rows, ["brightness", "contrast", "blur"])
    b = load_block(path)
    assert b.name == "low" and b.feature_names == ["brightness", "contrast", "blur"]
    np.testing.assert_allclose(b.values, VALUES)


def test_join_aligns_blocks_in_requested_order(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "a.parquet")
    _frame(ids=IDS[::-1], values=VALUES[::-1] * 10, prefix="g").iloc[:, :3].to_csv(
        tmp_path / "b.csv", index=False
    )
    a, b = load_block(tmp_path / "a.parquet"), load_block(tmp_path / "b.csv")
    j = join_blocks([a, b], ["v3", "v1"])
    assert list(j.ids) == ["v3", "v1"] and j.X.shape == (2, 5)
    np.testing.assert_allclose(j.X[:, j.slices["a"]], VALUES[[2, 0]])
    np.testing.assert_allclose(j.X[:, j.slices["b"]], VALUES[[2, 0], :2] * 10)
    assert j.feature_names == ["f_0", "f_1", "f_2", "g_0", "g_1"]
    assert [s.name for s in j.layout] == ["a", "b"] and j.dropped == []


def test_missing_ids_are_refused_with_count_and_names(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "a.parquet")
    a = load_block(tmp_path / "a.parquet")
    want = IDS + [f"x{i}" for i in range(7)]
    with pytest.raises(
        DataMismatchError,
        match=r"block 'a' .* lacks 7 of 11 video_ids: x0, x1, x2, x3, x4, \.\.\. \(\+2 more\)",
    ):
        join_blocks([a], want)


def test_missing_ids_dropped_only_on_request_and_reported(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "a.parquet")
    _frame(ids=IDS[:3], values=VALUES[:3]).to_parquet(tmp_path / "b.parquet")
    a, b = load_block(tmp_path / "a.parquet"), load_block(tmp_path / "b.parquet")
    j = join_blocks([a, b], ["v4", "v2", "zz"], on_missing="drop")
    assert list(j.ids) == ["v2"] and j.dropped == ["v4", "zz"] and list(j.rows) == [1]


def _bad(tmp_path: Path, df: pd.DataFrame, suffix: str = ".csv") -> Path:
    path = tmp_path / f"bad{suffix}"
    df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    return path


def test_duplicate_ids_refused(tmp_path: Path) -> None:
    df = _frame(ids=["v1", "v2", "v1", "v2"])
    with pytest.raises(DataMismatchError, match=r"block 'bad'.* 2 duplicate video_ids: v1, v2"):
        load_block(_bad(tmp_path, df, ".parquet"))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_refused_naming_column_and_row(tmp_path: Path, value: float) -> None:
    values = VALUES.copy()
    values[2, 1] = value
    with pytest.raises(DataMismatchError, match=r"1 NaN/inf values, first in column 'f_1' at video_id=v3"):
        load_block(_bad(tmp_path, _frame(values=values), ".parquet"))


def test_non_numeric_column_refused(tmp_path: Path) -> None:
    df = _frame()
    df["f_1"] = ["0.1", "0.2", "lots", "0.4"]
    with pytest.raises(
        DataMismatchError, match=r"column 'f_1' is not numeric \(row 2, video_id=v3: 'lots'\)"
    ):
        load_block(_bad(tmp_path, df))


def test_wrong_dimension_in_npy_dir_refused(tmp_path: Path) -> None:
    for i, vid in enumerate(IDS):
        np.save(tmp_path / f"{vid}.npy", np.zeros(3 if i != 2 else 4, dtype=np.float32))
    with pytest.raises(DataMismatchError, match=r"v3\.npy: 4 features, but v1\.npy has 3"):
        load_block(tmp_path, "x")
    np.save(tmp_path / "v3.npy", np.zeros((2, 3)))
    with pytest.raises(
        DataMismatchError, match=r"v3\.npy: expected a 1-D feature vector, got shape \(2, 3\)"
    ):
        load_block(tmp_path, "x")


def test_npy_dir_never_unpickles(tmp_path: Path) -> None:
    np.save(tmp_path / "v1.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataMismatchError, match=r"v1\.npy: not a readable \.npy array"):
        load_block(tmp_path, "x")


def test_wrong_dimension_against_a_trained_layout(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "a.parquet")
    a = load_block(tmp_path / "a.parquet")
    with pytest.raises(DataMismatchError, match="block 'a' .* has 3 features; the model expects 4"):
        join_blocks([a], IDS, layout=[BlockLayout("a", ["f_0", "f_1", "f_2", "f_3"])])
    with pytest.raises(DataMismatchError, match="column 1 is 'f_1'; the model expects 'g_1'"):
        join_blocks([a], IDS, layout=[BlockLayout("a", ["f_0", "g_1", "f_2"])])
    with pytest.raises(DataMismatchError, match="trained on blocks a, b: missing block\\(s\\) b"):
        join_blocks([a], IDS, layout=[BlockLayout("a", a.feature_names), BlockLayout("b", ["q"])])


def test_other_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataMismatchError, match="no 'video_id' column"):
        load_block(_bad(tmp_path, _frame().rename(columns={"video_id": "id"})))
    with pytest.raises(DataMismatchError, match="unknown table format '.txt'"):
        (tmp_path / "t.txt").write_text("x")
        load_block(tmp_path / "t.txt")
    with pytest.raises(DataMismatchError, match="no such file"):
        load_block(tmp_path / "absent.parquet")
    _frame().to_parquet(tmp_path / "a.parquet")
    a = load_block(tmp_path / "a.parquet")
    with pytest.raises(DataMismatchError, match="block name given more than once: a"):
        join_blocks([a, a], IDS)
    with pytest.raises(DataMismatchError, match="1 duplicate video_ids requested: v1"):
        join_blocks([a], ["v1", "v1"])


def test_parse_block_spec() -> None:
    assert parse_block_spec("coco=/x/features_coco80_rn152.parquet") == (
        "coco",
        Path("/x/features_coco80_rn152.parquet"),
    )
    assert parse_block_spec("/x/features_coco80_rn152.parquet") == (
        "coco80_rn152",
        Path("/x/features_coco80_rn152.parquet"),
    )
    with pytest.raises(DataMismatchError, match="expected NAME=TABLE"):
        parse_block_spec("=x.csv")

"""The public API: the three lines of the README, and what `predict` accepts everywhere."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import tiermem
from tiermem.errors import TiermemError

needs_resmem = pytest.mark.skipif(
    importlib.util.find_spec("resmem") is None,
    reason="ResMem not installed (optional extra: pip install 'tiermem[resmem]')",
)


@needs_resmem
def test_the_three_lines_score_a_sample_clip_zero_shot(sample_clip_paths: list[Path]) -> None:
    clip = str(sample_clip_paths[1])  # a plain string, as a user types it
    model = tiermem.load("zero-shot")
    result = model.predict(clip)
    table = result.table
    assert list(table["video_id"]) == [Path(clip).stem] and list(table["path"]) == [clip]
    assert 0.0 < table["score"].iloc[0] < 1.0 and not result.failed and result.zero_shot


def test_the_three_lines_with_a_fitted_model(fitted, memento_root, tmp_path, monkeypatch) -> None:
    _, model_dir, _ = fitted
    videos = memento_root / "videos"
    # The working directory holds other videos: one path must never become a scan of it.
    monkeypatch.chdir(videos)
    model = tiermem.load(str(model_dir))
    result = model.predict("bikes_t00.0.mp4")
    assert list(result.table.columns[:4]) == ["video_id", "path", "score", "percentile"]
    assert list(result.table["video_id"]) == ["bikes_t00.0"]
    assert {"contrib_low", "contrib_mid", "contrib_distinct"} <= set(result.table.columns)

    as_path = model.predict(videos / "synthetic_1.mp4")
    as_list = model.predict([videos / "synthetic_1.mp4", str(videos / "bikes_t00.0.mp4")])
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("synthetic_1.mp4", "bikes_t00.0.mp4"):
        shutil.copy(videos / name, folder / name)
    as_dir = model.predict(str(folder) + os.sep)
    assert list(as_path.table["video_id"]) == ["synthetic_1"]
    assert list(as_list.table["video_id"]) == ["synthetic_1", "bikes_t00.0"]
    assert sorted(as_dir.table["video_id"]) == ["bikes_t00.0", "synthetic_1"]
    one = float(as_path.table["score"].iloc[0])
    np.testing.assert_allclose(
        as_list.table.set_index("video_id").loc["synthetic_1", "score"], one, atol=1e-9
    )


def test_a_missing_path_is_an_error_naming_it(fitted) -> None:
    _, model_dir, _ = fitted
    model = tiermem.load(model_dir)
    with pytest.raises(TiermemError, match=r"missing\.mp4: no such file or directory"):
        model.predict("missing.mp4")
    with pytest.raises(TiermemError, match=r"missing\.mp4: no such file or directory"):
        tiermem.load("zero-shot").predict(["missing.mp4"])


def test_load_refuses_what_is_neither_a_model_nor_a_name(tmp_path) -> None:
    named = r"\(memento10k-captions, videomem-titles, zero-shot\)"
    with pytest.raises(
        TiermemError, match=r"not a tiermem model \(no such directory\) nor a named model " + named
    ):
        tiermem.load(tmp_path / "nope")
    assert tiermem.list_models() == ["memento10k-captions", "videomem-titles", "zero-shot"]


def test_the_root_verbs_and_registries() -> None:
    assert {"low", "mid", "high", "text", "prior"} <= set(tiermem.list_tiers())
    assert {"memento10k", "videomem", "mediaeval2021", "generic", "csv", "realbench"} <= set(
        tiermem.list_datasets()
    )
    assert tiermem.get_tier("low").name == "low"
    from tiermem.distinctiveness import list_distinctiveness
    from tiermem.model import list_heads
    from tiermem.model.losses import list_losses

    assert list_heads() == [
        "auto",
        "ensemble",
        "kernel-ridge",
        "m3s",
        "ridge",
    ] and list_distinctiveness() == [
        "cosine",
        "dbscan",
        "kde",
        "knn",
    ]
    assert list_losses() == ["l1", "mse", "mse_tails", "mse_to_spearman", "spearman"]
    with pytest.raises(TiermemError, match="unknown tier 'nope'; available: high, low, mid, prior, text"):
        tiermem.get_tier("nope")
    assert callable(tiermem.fit) and callable(tiermem.evaluate) and callable(tiermem.extract)
    with pytest.raises(AttributeError):
        tiermem.no_such_verb  # noqa: B018

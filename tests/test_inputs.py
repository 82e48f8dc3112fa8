"""`tiermem.inputs`: one path is one input, directories expand to their videos, missing files are kept or named."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tiermem.errors import TiermemError
from tiermem.inputs import as_path_list, find_videos, video_ids


@pytest.fixture()
def clips(sample_clip_paths: list[Path], tmp_path: Path) -> Path:
    """A directory with two sample clips at the top and one in a subdirectory."""
    root = tmp_path / "clips"
    (root / "sub").mkdir(parents=True)
    shutil.copy(sample_clip_paths[1], root / "b.mp4")
    shutil.copy(sample_clip_paths[2], root / "a.mp4")
    shutil.copy(sample_clip_paths[3], root / "sub" / "c.mp4")
    (root / "notes.txt").write_text("not a video")
    return root


def test_a_plain_string_is_one_file_not_a_scan_of_the_working_directory(
    clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(clips)
    assert find_videos("b.mp4") == [Path("b.mp4")]
    assert as_path_list("b.mp4") == [Path("b.mp4")]


def test_a_path_and_a_list_are_kept_as_named(clips: Path) -> None:
    assert find_videos(clips / "a.mp4") == [clips / "a.mp4"]
    named = [str(clips / "b.mp4"), clips / "sub" / "c.mp4"]
    assert find_videos(named) == [clips / "b.mp4", clips / "sub" / "c.mp4"]


def test_a_directory_expands_recursively_sorted_and_once(clips: Path) -> None:
    expected = [clips / "a.mp4", clips / "b.mp4", clips / "sub" / "c.mp4"]
    assert find_videos(clips) == expected
    assert find_videos([clips, clips / "a.mp4"]) == expected
    assert video_ids(find_videos(str(clips))) == ["a", "b", "c"]


def test_a_missing_file_is_kept_or_named(
    clips: Path, write_video: Callable[..., Path], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.mp4"
    assert find_videos([clips / "a.mp4", missing]) == [clips / "a.mp4", missing]
    with pytest.raises(TiermemError) as err:
        find_videos([clips / "a.mp4", missing], missing="raise")
    assert str(err.value) == f"{missing}: no such file or directory"
    made = write_video(tmp_path / "made.mp4", np.zeros((3, 16, 16, 3), np.uint8))
    assert find_videos([made], missing="raise") == [made]

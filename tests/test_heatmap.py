"""Where in the frame: occlusion maps of real sample clips, their faithfulness, and the ways to ask for one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.errors import TiermemError
from tiermem.heatmap import occlusion_map
from tiermem.run import Run
from tiermem.video import Clip, decode

GRID = 4


def score_of(pipe: Any, path: Path, frames: np.ndarray, clip: Clip) -> float:
    """The pipeline's score of `clip` with its frames replaced by `frames`, every tier computed
    on them (not through the heatmap code)."""
    run = Run()
    greyed = Clip(frames=frames, times=clip.times, meta=clip.meta)
    values = {name: tier.transform_batch([greyed]).values for name, tier in pipe.fitted_tiers(run).items()}
    return float(pipe.score_windows(values)["score"].iloc[0])


def greyed(frames: np.ndarray, row: int, col: int) -> np.ndarray:
    """Frames with one cell of a GRID x GRID lattice grey: the test's own slicing."""
    out = frames.copy()
    side = frames.shape[1] // GRID
    out[:, row * side : (row + 1) * side, col * side : (col + 1) * side] = 128
    return out


@pytest.mark.parametrize("name", ["bikes_000", "carphone_pristine_000"])
def test_greying_the_hottest_patch_lowers_the_score_more_than_the_coldest(
    fitted, sample_clip_paths: list[Path], name: str
) -> None:
    pipe = fitted[0]
    path = next(p for p in sample_clip_paths if p.stem == name)
    clip = decode(path, **pipe.config.decode)
    # a window as long as the clip: the whole clip, decoded as a clip
    heat = pipe.heatmap(path, 1.5, grid=GRID, window=clip.meta.duration)
    assert heat.effect.shape == (GRID, GRID) and np.abs(heat.effect).max() > 1e-4  # the map says something
    base = score_of(pipe, path, clip.frames, clip)
    assert heat.score == pytest.approx(base, abs=1e-6) and (heat.start, heat.end) == (
        0.0,
        pytest.approx(clip.meta.duration),
    )
    hot = score_of(pipe, path, greyed(clip.frames, *heat.hottest), clip)
    cold = score_of(pipe, path, greyed(clip.frames, *heat.coldest), clip)
    assert hot - base < cold - base  # faithful: hiding what the map calls hottest costs the most
    assert hot - base == pytest.approx(heat.effect[heat.hottest], abs=1e-6)
    assert cold - base == pytest.approx(heat.effect[heat.coldest], abs=1e-6)


def test_a_window_of_a_long_video_and_the_overlay(fitted, tmp_path: Path) -> None:
    from tiermem.video.samples import make_long_video

    pipe = fitted[0]
    long = make_long_video(tmp_path / "joined.mp4", seconds=10, size=(320, 180))
    heat = pipe.heatmap(long, 9.5, grid=3)
    length = pipe.window_seconds
    assert heat.end == pytest.approx(10.0, abs=0.05) and heat.start == pytest.approx(
        heat.end - length
    )  # kept inside
    png = cv2.imdecode(np.frombuffer(heat.png(width=300), np.uint8), cv2.IMREAD_COLOR)
    assert png.shape == (169, 300, 3)  # the 320 x 180 video's shape, not the model's square
    with pytest.raises(TiermemError, match="between 0 and the end of the video"):
        pipe.heatmap(long, 12.0)


def test_a_model_that_reads_no_frames_has_no_heatmap(fitted, sample_clip_paths: list[Path]) -> None:
    clip = decode(sample_clip_paths[1], **fitted[0].config.decode)
    with pytest.raises(TiermemError, match="reads no frames"):
        occlusion_map(clip, 1.0, 0.0, {}, lambda values: np.zeros(1), grid=3)
    done = CliRunner().invoke(
        app, ["predict", str(sample_clip_paths[1]), "--model", "memento10k-captions", "--heatmaps", "maps"]
    )
    assert done.exit_code != 0 and "scores captions, not frames" in done.output


def test_predict_writes_heatmaps_of_the_peak_trough_and_hook(fitted, tmp_path: Path) -> None:
    from tiermem.video.samples import make_long_video

    model = fitted[1]
    long = make_long_video(tmp_path / "joined.mp4", seconds=8, size=(160, 90))
    out = tmp_path / "maps"
    done = CliRunner().invoke(
        app, ["predict", str(long), "--model", str(model), "--heatmaps", str(out), "--json"]
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)[0]["timeline"]["summary"]
    maps = json.loads((out / "joined.heatmaps.json").read_text())
    assert set(maps) == {"peak", "trough", "hook"}
    for key in maps:
        assert maps[key]["t"] == pytest.approx((summary[key]["start"] + summary[key]["end"]) / 2, abs=1e-3)
        assert np.array(maps[key]["effect"]).shape == (5, 5)
        assert (out / f"joined_{key}.png").stat().st_size > 1000
    assert not list(out.glob(".*.tmp"))


def test_the_report_shows_where_in_the_frame_under_the_peak_and_trough(fitted, tmp_path: Path) -> None:
    from tiermem.video.samples import make_long_video

    long = make_long_video(tmp_path / "joined.mp4", seconds=8, size=(160, 90))
    out = tmp_path / "report.html"
    done = CliRunner().invoke(
        app, ["report", "--model", str(fitted[1]), "--video", str(long), "--heatmaps", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    html = out.read_text()
    for kind in ("peak", "trough"):
        assert f'alt="where in the {kind} window' in html
    assert html.count("green regions raise the score") == 2

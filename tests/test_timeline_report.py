"""Memorability over time shown to people: the frame on screen at a time (`frame_at`), the
report's timeline section, the terminal view and `tiermem report --video`.

The timelines come from the plumbing pipeline of conftest (real tiers, INVENTED training
scores) on a generated video whose content is known second by second, so the frames the
report embeds can be checked against the video itself.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import write_video
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.cli.timeline_view import print_timeline
from tiermem.errors import VideoDecodeError
from tiermem.report import ReportData, render_report
from tiermem.report.timeline import timeline_section
from tiermem.timeline import Timeline
from tiermem.video.stream import frame_at

#: One distinct colour per second of the generated videos.
COLOURS = np.array(
    [
        [230, 30, 30],
        [30, 200, 40],
        [40, 60, 230],
        [240, 220, 30],
        [30, 220, 220],
        [220, 40, 220],
        [128, 128, 128],
        [250, 250, 250],
        [20, 20, 20],
        [240, 140, 20],
    ],
    np.uint8,
)
FPS = 10


def _colour_video(path: Path, seconds: int, size: tuple[int, int] = (64, 48), texture: bool = False) -> Path:
    """`seconds` seconds at 10 fps, second k a flat COLOURS[k] (with moving stripes when `texture`),
    a keyframe every 2 s so that seeking lands before the time asked for."""
    w, h = size
    xx = np.arange(w)[None, :, None]
    frames = []
    for i in range(seconds * FPS):
        image = np.broadcast_to(COLOURS[i // FPS], (h, w, 3)).astype(np.float32)
        if texture:
            image = image * (0.75 + 0.25 * (((xx + 2 * i) // 8) % 2))
        frames.append(image.astype(np.uint8))
    return write_video(path, np.stack(frames), fps=FPS, options={"g": str(2 * FPS)})


def _mean_colour(image: np.ndarray) -> np.ndarray:
    return image.reshape(-1, 3).mean(axis=0)


def _nearest_second(image: np.ndarray) -> int:
    """The second of the generated video whose colour `image` shows."""
    return int(np.argmin(np.abs(COLOURS.astype(float) - _mean_colour(image)).sum(axis=1)))


# -- frame_at ------------------------------------------------------------------------------------
def test_frame_at_returns_the_frame_on_screen(tmp_path):
    path = _colour_video(tmp_path / "colours.mp4", seconds=8)
    for seconds, second in (
        (0.0, 0),
        (0.05, 0),
        (0.95, 0),
        (1.0, 1),
        (2.5, 2),
        (4.99, 4),
        (5.0, 5),
        (7.95, 7),
    ):
        image = frame_at(path, seconds, size=32)
        assert image.shape == (24, 32, 3) and image.dtype == np.uint8  # width 32, aspect 4:3 kept
        assert np.abs(_mean_colour(image) - COLOURS[second]).max() < 12, (seconds, _mean_colour(image))


def test_frame_at_names_the_file_when_it_cannot_answer(tmp_path):
    path = _colour_video(tmp_path / "short.mp4", seconds=2)
    with pytest.raises(VideoDecodeError, match=r"short\.mp4.*ends at 2\.00 s"):
        frame_at(path, 5.0)
    with pytest.raises(VideoDecodeError, match="gone.mp4"):
        frame_at(tmp_path / "gone.mp4", 1.0)
    with pytest.raises(ValueError):
        frame_at(path, -1.0)


# -- a fitted pipeline's timeline ----------------------------------------------------------------
@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten seconds, a new colour (a cut) every second, stripes drifting across each."""
    return _colour_video(
        tmp_path_factory.mktemp("long") / "colour_run.mp4", seconds=10, size=(128, 96), texture=True
    )


@pytest.fixture(scope="module")
def timeline(fitted, long_video: Path) -> Timeline:
    pipe, _, _ = fitted
    return pipe.timeline(long_video, stride=1.0)


def _images(html: str, kind: str) -> list[str]:
    return re.findall(rf'src="data:image/{kind};base64,([^"]+)"', html)


def test_report_section_shows_the_curve_the_peak_and_trough_frames_and_the_changes(timeline, long_video):
    s = timeline.summary
    assert s["windows"] >= 6 and s["peak"]["start"] != s["trough"]["start"]
    html = render_report(ReportData(title="timeline", timelines=[timeline]))
    section = html[html.index('<section id="timeline-colour_run"') :]
    assert section.index("</section>") < section.index("</body>")  # inside the page
    assert len(_images(section, "png")) == 1  # the curve
    frames = _images(section, "jpeg")
    assert len(frames) == 2  # the peak's frame, then the trough's
    for key, encoded in zip(("peak", "trough"), frames):
        w = s[key]
        assert f"window {w['start']:.1f}–{w['end']:.1f} s" in section
        assert f"{w['score']:.3f}" in section
        shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"))
        middle = (w["start"] + w["end"]) / 2
        assert _nearest_second(shown) == _nearest_second(frame_at(long_video, middle)), key
    assert f"{s['mean']:.3f}" in section and "hook (opening window)" in section
    assert "share of windows above the training median" in section  # a fitted model has one
    assert "cut at" in section  # the changes between windows are listed
    for change in (c for c in timeline.table["changes"] if c):
        assert change.split(";")[0] in section


def test_report_section_without_the_video_keeps_the_curve_and_numbers(timeline, tmp_path):
    moved = Timeline(
        video_id=timeline.video_id,
        path=str(tmp_path / "moved.mp4"),
        table=timeline.table,
        facts=timeline.facts,
        duration=timeline.duration,
        length=timeline.length,
        stride=timeline.stride,
        training_median=timeline.training_median,
    )
    html = timeline_section(moved)
    assert len(_images(html, "png")) == 1 and not _images(html, "jpeg")
    assert html.count("frame not available") == 2 and "moved.mp4" in html


def test_terminal_view_lists_windows_sparkline_and_summary(timeline):
    console = Console(record=True, width=160)
    print_timeline(timeline, console)
    text = console.export_text()
    s = timeline.summary
    assert f"{s['peak']['score']:.3f} at {s['peak']['start']:.1f}–{s['peak']['end']:.1f} s" in text
    assert f"trough {s['trough']['score']:.3f}" in text and f"mean {s['mean']:.3f}" in text
    assert timeline.sparkline() in text
    for row in timeline.table.itertuples():
        assert f"{row.start:.1f}–{row.end:.1f} s" in text
    assert "top contributions" in text and "pct" in text  # a fitted model explains every window
    assert "% of windows above the training median" in text


# -- tiermem report --video ------------------------------------------------------------------------
def test_cli_report_with_videos_adds_their_timelines(fitted, long_video, tmp_path):
    _, model, _ = fitted
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        app, ["report", "--model", str(model), "--video", str(long_video), "--stride", "2", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert 'id="timeline-colour_run"' in html and "Tier ablation" in html
    assert "every 2 s" in html  # the stride asked for
    assert len(_images(html[html.index('id="timeline-colour_run"') :], "jpeg")) == 2


def test_cli_report_with_a_bad_video_or_stride_is_one_line(fitted, tmp_path):
    _, model, _ = fitted
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        app, ["report", "--model", str(model), "--video", str(tmp_path / "missing.mp4"), "--out", str(out)]
    )
    assert res.exit_code == 1 and "missing.mp4" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()
    res = CliRunner().invoke(
        app, ["report", "--model", str(model), "--video", str(tmp_path / "x.mp4"), "--stride", "0"]
    )
    assert res.exit_code != 0 and "--stride" in res.output

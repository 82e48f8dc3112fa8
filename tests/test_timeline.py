"""Timelines: windows over a long video, each scored as the clip it covers, from one streaming pass.

What is checked, against answers computed independently of the scanning code:

- exactness: a window scores as the same stretch cut out as its own file (stream copy of an
  all-intra video: the same decoded frames), and close to a re-encoded cut;
- known answers on generated video: a still scene then a hard cut to a moving texture (flow,
  cut time), a video shorter than one window, timestamps that jump and vary, a truncated file;
- the window and stride arguments, in the API and on the command line;
- streaming: memory does not grow with the video's length, the file is opened once;
- the summary (peak, trough, hook, share above the training median, sparkline) against the table.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import av
import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import PIPELINE_FRAMES, PIPELINE_SIZE, write_video
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.errors import TiermemError
from tiermem.extraction.windows import WindowPlan, default_stride, scan
from tiermem.pipeline import Pipeline, PipelineConfig
from tiermem.run import Run
from tiermem.tiers.per_frame import FrameReads, FrameTier, Work
from tiermem.timeline.result import SPARK, sparkline
from tiermem.video.clip import VideoMeta
from tiermem.video.samples import copy_stretch, make_long_video

#: The fitted pipeline was trained on 3-s clips: its default window.
WINDOW = 3.0
#: Seconds between a window's sampled frames.
STEP = WINDOW / PIPELINE_FRAMES
#: A window against the same stretch cut out by stream copy: the same packets decode to the
#: same pixels, the tiers run the same functions on them, and the head sees the same inputs;
#: only the batching of the network's per-frame work differs (a few float32 roundings, ~1e-10
#: measured on the score).
EXACT = 1e-6


# -- helpers -----------------------------------------------------------------------------


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random grey texture (uint8): detail for optical flow to follow."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (height, width)).astype(np.float32), (0, 0), 3.0)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def reencode(src: Path, out: Path, start: float, length: float, fps: int = 25) -> Path:
    """The frames of `src` shown in [start, start + length), decoded and encoded again as a
    normal h264 file (crf 23, a keyframe every 50 frames, B-frames)."""
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        enc = dst.add_stream(
            "libx264",
            rate=fps,
            options={"crf": "23", "preset": "veryfast", "x264-params": "keyint=50:scenecut=0"},
        )
        enc.width, enc.height, enc.pix_fmt = (
            stream.codec_context.width,
            stream.codec_context.height,
            "yuv420p",
        )
        n = 0
        for frame in inp.decode(stream):
            if not start - 1e-6 <= frame.time < start + length - 1e-6:
                continue
            image = av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
            image.pts, image.time_base = n, Fraction(1, fps)
            n += 1
            for packet in enc.encode(image):
                dst.mux(packet)
        for packet in enc.encode():
            dst.mux(packet)
    return out


def window_row(table: pd.DataFrame, start: float) -> pd.Series:
    rows = table[np.isclose(table["start"], start)]
    assert len(rows) == 1, f"no single window starts at {start} s: {table['start'].tolist()}"
    return rows.iloc[0]


def contrib_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table if c.startswith("contrib_")]


class FrameProbe(FrameTier):
    """A tier whose features are the sampled frames' red level, in order: it shows which decoded
    frame a window read at each sampled time (the videos it reads give frame i the level 10 + 2i).
    Facts: the sampled frames' times from the window start."""

    name: ClassVar[str] = "probe"

    def __init__(self, frames: int) -> None:
        super().__init__(frames=frames)
        self.frames = frames

    @property
    def feature_names(self) -> list[str]:
        return [f"level_{i}" for i in range(self.frames)]

    def reads(self, num_frames: int) -> FrameReads:
        return FrameReads(frames={"level": np.arange(num_frames)})

    def per_frame(self, name: str, frames: np.ndarray) -> np.ndarray:
        return frames[..., 0].astype(np.float32).mean(axis=(1, 2))

    def aggregate(self, work: Work, meta: VideoMeta, times: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        return work["level"].astype(np.float32), {"times": [float(t) for t in times]}


def write_timed_grey(path: Path, pts_ms: list[int], size: int = 64) -> Path:
    """Lossless (ffv1, grey) frames at the given presentation times in milliseconds (time base
    1/1000, as Matroska stores them); frame i is a flat grey of level 10 + 2i."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "gray"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)  # else pts snap to 1/25 s
        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(np.full((size, size), 10 + 2 * i, np.uint8), format="gray")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


# -- shared videos and timelines -----------------------------------------------------------


@pytest.fixture(scope="module")
def pipe(fitted: tuple[Pipeline, Path, Path]) -> Pipeline:
    pipe = fitted[0]
    assert pipe.clip_seconds_ == WINDOW  # the training clips' median length: the default window
    return pipe


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("timeline_videos")


@pytest.fixture(scope="module")
def intra_video(videos: Path) -> Path:
    """The sample videos joined into 12 s of 320x180, every frame a keyframe (cuttable exactly)."""
    return make_long_video(videos / "joined_intra.mp4", seconds=12, size=(320, 180), keyframe_every=1)


@pytest.fixture(scope="module")
def intra_timeline(pipe: Pipeline, intra_video: Path):
    return pipe.timeline(intra_video)


@pytest.fixture(scope="module")
def intra_timeline_1s(pipe: Pipeline, intra_video: Path):
    return pipe.timeline(intra_video, stride=1.0)


@pytest.fixture(scope="module")
def cut_then_motion(videos: Path) -> Path:
    """4 s of a still reddish texture, a hard cut, then 4 s of a bluish texture moving 1 px per
    frame to the right (wrapping around), 128x128 at 25 fps (near-lossless)."""
    tex = texture(128, 256, seed=3)
    still = np.stack([tex[:, :128], tex[:, :128] // 2, tex[:, :128] // 4], axis=-1)
    moving = np.stack([tex[:, 128:] // 4, tex[:, 128:] // 2, tex[:, 128:]], axis=-1)
    frames = [still] * 100 + [np.roll(moving, i, axis=1) for i in range(100)]
    return write_video(videos / "still_cut_moving.mp4", np.stack(frames), fps=25)


# -- 1. exactness ----------------------------------------------------------------------------


def test_default_stride_shares_every_frame_of_the_pipeline(pipe: Pipeline, intra_timeline) -> None:
    # 9 frames per 3-s window (1/3 s apart): the low tier's HOG reads every 3rd, the mid tier 5
    # of 9 (every 2nd), so windows share all their frames' work when they start 6 steps (2 s)
    # apart; 1 s would be 3 steps, which the mid tier's frames do not repeat on.
    assert default_stride(WINDOW, PIPELINE_FRAMES, pipe.fitted_tiers(Run())) == pytest.approx(2.0)
    assert intra_timeline.stride == pytest.approx(2.0)
    assert intra_timeline.length == WINDOW
    # Windows [2k, 2k + 3) that fit in 12 s: k = 0..4.
    assert intra_timeline.table["start"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert intra_timeline.table["end"].tolist() == [3.0, 5.0, 7.0, 9.0, 11.0]


def test_windows_score_as_the_same_stretch_cut_into_files(
    pipe: Pipeline, intra_video: Path, intra_timeline, tmp_path: Path
) -> None:
    table = intra_timeline.table
    starts = table["start"].tolist()
    assert len(starts) >= 3
    cuts = [copy_stretch(intra_video, tmp_path / f"cut_{s:04.1f}.mp4", s, WINDOW) for s in starts]
    clips = pipe.predict(cuts, timeline=False)
    assert not clips.failed and not clips.timelines
    by_id = clips.table.set_index("video_id")
    for start in starts:
        clip, window = by_id.loc[f"cut_{start:04.1f}"], window_row(table, start)
        assert window["score"] == pytest.approx(clip["score"], abs=EXACT), start
        assert window["percentile"] == pytest.approx(clip["percentile"], abs=1e-9), start
        for col in contrib_columns(table):  # each block's Shapley contribution too
            assert window[col] == pytest.approx(clip[col], abs=EXACT), (start, col)
    # The windows differ from one another far more than from their cuts: the check has teeth.
    assert np.ptp(table["score"]) > 1000 * EXACT


def test_windows_off_the_default_grid_score_as_their_cuts(
    pipe: Pipeline, intra_video: Path, intra_timeline_1s, tmp_path: Path
) -> None:
    """A 1-s stride: windows at odd seconds, whose mid-tier frames are not shared."""
    assert intra_timeline_1s.table["start"].tolist() == [float(k) for k in range(10)]
    starts = [1.0, 3.0, 7.0]
    cuts = [copy_stretch(intra_video, tmp_path / f"odd_{s:.0f}.mp4", s, WINDOW) for s in starts]
    clips = pipe.predict(cuts, timeline=False).table.set_index("video_id")
    for start in starts:
        score = clips.loc[f"odd_{start:.0f}", "score"]
        assert window_row(intra_timeline_1s.table, start)["score"] == pytest.approx(score, abs=EXACT), start


def test_windows_track_reencoded_cuts(
    pipe: Pipeline, intra_video: Path, intra_timeline_1s, tmp_path: Path
) -> None:
    """Cuts decoded and encoded again as normal files (crf 23, 2-s GOPs, B-frames) are not the
    same pixels, nor the same bytes per second: their scores move, measured by up to 12% of the
    spread of the window scores along the video (correlation 0.99). The curve must survive:
    correlation above 0.95 and no cut further than 25% of that spread from its window."""
    starts = intra_timeline_1s.table["start"].tolist()
    assert len(starts) == 10
    cuts = [reencode(intra_video, tmp_path / f"re_{s:04.1f}.mp4", s, WINDOW) for s in starts]
    clips = pipe.predict(cuts, timeline=False).table.set_index("video_id")
    windows = intra_timeline_1s.table["score"].to_numpy()
    again = clips.loc[[f"re_{s:04.1f}" for s in starts], "score"].to_numpy()
    spread = np.ptp(windows)
    assert spread > 1e-3
    assert np.corrcoef(windows, again)[0, 1] > 0.95
    assert np.max(np.abs(windows - again)) < 0.25 * spread


# -- 2. known answer: a still scene, a hard cut, motion --------------------------------------


def test_still_then_cut_then_motion_low_tier(pipe: Pipeline, cut_then_motion: Path) -> None:
    low = pipe.fitted_tiers(Run())["low"]
    features = scan(
        cut_then_motion,
        {"low": low},
        WindowPlan(WINDOW, 1.0, PIPELINE_FRAMES),
        size=PIPELINE_SIZE,
        mode="stretch",
    )
    assert features.starts.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # 8 s: windows [k, k + 3), k <= 5
    values = pd.DataFrame(features.values["low"], columns=low.feature_names, index=features.starts)
    cuts = {s: f.get("low", {}).get("cuts_at", []) for s, f in zip(features.starts, features.facts)}
    for start in (0.0, 1.0):  # wholly in the still part
        assert values.loc[start, "flow_mean"] < 0.05
        assert values.loc[start, "cut_rate"] == 0.0 and cuts[start] == []
    for start in (2.0, 3.0):  # the cut at 4 s inside: seen at the first sampled frame after it
        assert len(cuts[start]) == 1
        at = start + cuts[start][0]
        assert 4.0 <= at <= 4.0 + STEP + 0.01, (start, cuts[start])
        assert values.loc[start, "cut_rate"] == pytest.approx(1 / WINDOW)
    # Wholly in the moving part: sampled frames 1/3 s apart are 8 or 9 frames, so pixels, apart.
    for start in (4.0, 5.0):
        assert cuts[start] == []
        assert values.loc[start, "flow_mean"] == pytest.approx(25 / 3, rel=0.1)
    assert values.loc[[4.0, 5.0], "flow_mean"].min() > 100 * max(
        values.loc[[0.0, 1.0], "flow_mean"].max(), 1e-3
    )


def test_still_then_cut_then_motion_timeline_says_cut_once(pipe: Pipeline, cut_then_motion: Path) -> None:
    tl = pipe.timeline(cut_then_motion, stride=1.0)
    said = [c for text in tl.table["changes"] for c in text.split("; ") if c.startswith("cut at")]
    assert len(said) == 1, tl.table["changes"].tolist()
    at = float(said[0].removeprefix("cut at ").removesuffix(" s"))
    assert 4.0 <= at <= 4.0 + STEP + 0.05
    first = tl.table.index[tl.table["changes"].str.contains("cut at")][0]
    assert tl.table.loc[first, "start"] == 2.0  # the first window holding the cut says it
    cut_windows = [s for s, f in zip(tl.table["start"], tl.facts) if f.get("low", {}).get("cuts_at")]
    assert cut_windows == [2.0, 3.0]


# -- 3. a video shorter than one window -----------------------------------------------------


def test_short_video_is_one_window_scored_as_the_clip(pipe: Pipeline, videos: Path) -> None:
    tex = texture(128, 128, seed=5)
    rgb = np.stack([tex, 255 - tex, tex // 2], axis=-1)
    short = write_video(
        videos / "two_seconds.mp4", np.stack([np.roll(rgb, 2 * i, axis=0) for i in range(50)]), fps=25
    )
    pred = pipe.predict(short, timeline=True)
    clip = pipe.predict(short, timeline=False)
    tl = pred.timelines["two_seconds"]
    assert len(tl.table) == 1
    assert tl.table["start"].tolist() == [0.0] and tl.table["end"].iloc[0] == pytest.approx(2.0)
    assert "shorter than one 3-s window" in tl.note and "one window covers all of it" in tl.note
    assert tl.table["score"].iloc[0] == pytest.approx(clip.table["score"].iloc[0], abs=1e-9)
    assert pred.table["score"].iloc[0] == pytest.approx(clip.table["score"].iloc[0], abs=1e-9)
    assert not pred.failed
    # Left to decide, a video shorter than 1.5 windows is scored as one clip, without a timeline.
    assert not pipe.predict(short).timelines


# -- 4. timestamps that jump and vary ---------------------------------------------------------


#: 50 frames at 25 fps (0 to 1.96 s), nothing shown for 2 s, then 45 frames at alternating
#: 20- and 60-ms intervals (4.00 to 5.76 s): 95 frames, which at 25 fps would last 3.8 s.
GAP_PTS = [40 * i for i in range(50)] + [4000 + 80 * (i // 2) + 20 * (i % 2) for i in range(45)]


def on_screen(times: np.ndarray) -> np.ndarray:
    """Index of the frame of GAP_PTS shown at each time: the last one starting at or before it."""
    starts = np.asarray(GAP_PTS) / 1000.0
    return np.searchsorted(starts, times + 1e-6, side="right") - 1


def test_windows_sample_by_presentation_time(videos: Path) -> None:
    path = write_timed_grey(videos / "gap_vfr.mkv", GAP_PTS)
    plan = WindowPlan(1.0, 0.5, 5)
    features = scan(path, {"probe": FrameProbe(5)}, plan, size=64, mode="stretch")
    # Ends at 1.0, 1.5, ... up to the last frame (5.76 s) plus its display time: 10 windows,
    # where counting frames at 25 fps (3.8 s) would give 6.
    assert features.starts.tolist() == [0.5 * k for k in range(10)]
    assert features.duration > 5.76
    levels = features.values["probe"]
    for k, start in enumerate(features.starts):
        shown = on_screen(plan.times(k))
        assert levels[k].tolist() == (10 + 2 * shown).tolist(), start
        pts = np.asarray(GAP_PTS)[shown] / 1000.0
        assert features.facts[k]["probe"]["times"] == pytest.approx((pts - start).tolist(), abs=1e-9)
    # In the gap, the frame before it (frame 49, from 1.96 s) stays on screen.
    gap = int(np.flatnonzero(features.starts == 2.0)[0])
    assert levels[gap].tolist() == [10 + 2 * 49] * 5
    # After the gap, irregular intervals: the window at 4.0 s samples 4.1, 4.3, ... 4.9 s.
    after = int(np.flatnonzero(features.starts == 4.0)[0])
    assert ((levels[after] - 10) / 2).tolist() == [
        53,
        57,
        63,
        67,
        73,
    ]  # 4.1 and 4.5 and 4.9 s: frames starting right then


def test_pipeline_timeline_follows_seconds_on_a_video_with_a_gap(pipe: Pipeline, videos: Path) -> None:
    path = write_timed_grey(videos / "gap_pipeline.mkv", GAP_PTS)
    pred = pipe.predict(path, timeline=True, stride=1.0)
    tl = pred.timelines["gap_pipeline"]
    # [0, 3), [1, 4), [2, 5) end within 5.76 s + one frame; 95 frames at 25 fps would allow 1.
    assert tl.table["start"].tolist() == [0.0, 1.0, 2.0]
    assert not pred.failed


def test_b_frames_are_placed_in_presentation_order(videos: Path) -> None:
    """h264 with B-frames decodes out of order; windows must still read frames by their time."""
    frames = [np.full((64, 64, 3), 10 + 4 * i, np.uint8) for i in range(60)]  # frame i: level 10 + 4i
    path = write_video(
        videos / "bframes.mp4",
        frames,
        fps=25,
        options={"preset": "medium", "crf": "1", "x264-params": "keyint=12:bframes=3"},
    )
    with av.open(str(path)) as container:
        packets = [(p.pts, p.dts) for p in container.demux(video=0) if p.size]
    assert any(pts != dts for pts, dts in packets)  # reordered: the check has something to catch
    plan = WindowPlan(1.0, 0.2, 5)
    features = scan(path, {"probe": FrameProbe(5)}, plan, size=64, mode="stretch")
    assert len(features.starts) == 8  # 2.4 s: windows [0.2k, 0.2k + 1) for k <= 7
    for k in range(len(features.starts)):
        read = np.round((features.values["probe"][k] - 10) / 4).astype(int)  # lossy: levels within 1
        assert read.tolist() == np.floor(plan.times(k) * 25 + 1e-6).astype(int).tolist(), k


# -- 5. a stream that breaks -----------------------------------------------------------------


@pytest.fixture(scope="module")
def truncated(videos: Path) -> tuple[Path, Path]:
    """(whole, truncated): 10 s joined video remuxed as a faststart mp4 (the index first), and
    that file cut in half: the index lists 250 frames, about 126 are left."""
    src = make_long_video(videos / "joined_small.mp4", seconds=10, size=(160, 90))
    whole = videos / "faststart.mp4"
    with av.open(str(src)) as inp, av.open(str(whole), "w", options={"movflags": "faststart"}) as dst:
        stream = inp.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            dst.mux(packet)
    data = whole.read_bytes()
    broken = videos / "half.mp4"
    broken.write_bytes(data[: len(data) // 2])
    return whole, broken


def test_broken_stream_keeps_the_windows_before_the_break(
    pipe: Pipeline, truncated: tuple[Path, Path]
) -> None:
    whole, broken = truncated
    pred = pipe.predict(str(broken), timeline=True)
    assert len(pred.failed) == 1
    path, why = pred.failed[0]
    assert path == str(broken)
    assert why.startswith("decoding failed at ") and " s: " in why
    at = float(why.removeprefix("decoding failed at ").split(" s")[0])
    assert 3.0 < at < 7.0  # half of the 10-s file's bytes
    tl = pred.timelines["half"]
    assert tl.failed == why
    assert len(tl.table) >= 1 and tl.table["end"].max() <= at + 0.1
    # The windows kept are those of the intact file, to the last digit.
    intact = pipe.timeline(whole)
    assert intact.failed is None and len(intact.table) > len(tl.table)
    for _, row in tl.table.iterrows():
        assert row["score"] == pytest.approx(window_row(intact.table, row["start"])["score"], abs=1e-9)
    assert pred.table["score"].iloc[0] == pytest.approx(tl.table["score"].mean())


def test_cli_timeline_of_a_broken_stream_writes_its_windows_and_fails(
    fitted, truncated, tmp_path: Path
) -> None:
    _, model, _ = fitted
    _, broken = truncated
    out = tmp_path / "x.csv"
    code, output = cli("predict", broken, "--model", model, "--timeline", "--out", out)
    assert code != 0, output
    assert "decoding failed at" in output and "half.mp4" in output
    rows = pd.read_csv(out)
    assert set(rows["video_id"]) == {"half"}
    assert rows["start"].tolist() == [2.0 * k for k in range(len(rows))] and len(rows) >= 1


# -- 6. window and stride arguments -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stride": 0}, "--stride must be a positive number of seconds"),
        ({"stride": -1.0}, "--stride must be a positive number of seconds"),
        ({"stride": float("nan")}, "--stride must be a positive number of seconds"),
        ({"window": 0}, "--window must be a positive number of seconds"),
        ({"window": -2.0}, "--window must be a positive number of seconds"),
        ({"stride": 100.0}, "--stride 100 s is longer than the video"),
        ({"window": 100.0}, "--window 100 s is longer than the video"),
    ],
)
def test_bad_window_or_stride_is_one_line(
    pipe: Pipeline, intra_video: Path, kwargs: dict, message: str
) -> None:
    with pytest.raises(TiermemError) as info:
        pipe.predict(intra_video, timeline=True, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_zero_shot_checks_window_and_stride_before_scoring(intra_video: Path) -> None:
    """The check comes before any network runs: no ResMem needed to see it."""
    from tiermem.zero_shot import ZeroShotModel

    with pytest.raises(TiermemError, match="--stride must be a positive number of seconds"):
        ZeroShotModel().predict(intra_video, timeline=True, stride=0)
    with pytest.raises(TiermemError, match="longer than the video"):
        ZeroShotModel().predict(intra_video, timeline=True, window=60.0)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--stride", "0", "--stride must be > 0, got 0.0"),
        ("--stride", "-1", "--stride must be > 0, got -1.0"),
        ("--window", "0", "--window must be > 0, got 0.0"),
        ("--stride", "100", "--stride 100 s is longer than the video"),
        ("--window", "100", "--window 100 s is longer than the video"),
    ],
)
def test_cli_refuses_bad_window_or_stride(
    fitted, intra_video: Path, option: str, value: str, message: str
) -> None:
    _, model, _ = fitted
    code, output = cli("predict", intra_video, "--model", model, "--timeline", option, value)
    assert code != 0
    if "longer than the video" in message:  # found once the video is opened: tiermem's one error line
        assert code == 1
        assert [line for line in output.splitlines() if line.startswith("error:")] == [
            f"error: {intra_video}: {message} (12.00 s)"
        ], output
    else:  # refused while parsing the options, before any model loads: one line, exit 1
        assert code == 1 and [line for line in output.splitlines() if line.startswith("error:")] == [
            f"error: {message}"
        ], output


# -- 7. streaming ----------------------------------------------------------------------------


MEASURE_GROWTH = textwrap.dedent(
    """
    import gc, json, resource, sys
    KIB = 1024 if sys.platform == "darwin" else 1  # ru_maxrss: bytes on macOS, KiB on Linux
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // KIB
    start = peak()
    from tiermem.pipeline import Pipeline
    model, warm, long = sys.argv[1:4]
    pipe = Pipeline.load(model)
    pipe.timeline(warm)  # imports, buffers and batches of the same sizes
    gc.collect()
    before = peak()
    tl = pipe.timeline(long)
    print(json.dumps({"start_kib": start, "growth_kib": peak() - before, "windows": len(tl.table)}))
    """
)
#: A process's peak memory starts at that of the process that started it (fork copies it, exec
#: keeps it), and pytest's, with networks loaded, is far above a scan's: the measuring process
#: is started by this small one instead.
LAUNCH = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


@pytest.fixture(scope="module")
def low_model(memento_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A low-tier-only pipeline (no network: memory moves only with what the scan holds)."""
    from tiermem.datasets import read_dataset

    work = tmp_path_factory.mktemp("low_only")
    cfg = PipelineConfig(
        target="mem_score",
        tiers=["low"],
        head="ridge",
        frames=PIPELINE_FRAMES,
        size=PIPELINE_SIZE,
        ablate=False,
    )
    return Pipeline(cfg).fit(read_dataset("memento10k", memento_root), work / "cache").save(work / "model")


def test_memory_stays_flat_as_the_video_doubles(low_model: Path, videos: Path) -> None:
    """Peak memory growth of a timeline over 30 s and over 60 s of 160x90 video, each after a
    12-s warm-up in a fresh process. Measured: identical to the KiB (1.4 MiB each). A scan that
    kept its converted frames would grow ~4.4 MiB more for the extra 30 s (3 grid frames a
    second of 128x128x3; measured 4.6), one that kept every decoded frame ~16 MiB; 2 MiB is
    allowed."""
    longest = make_long_video(videos / "low_60.mp4", seconds=60, size=(160, 90))  # 2-s GOPs, closed
    warm = copy_stretch(longest, videos / "low_12.mp4", 0.0, 12.0)
    growth = {}
    for seconds in (30, 60):
        long = (
            longest if seconds == 60 else copy_stretch(longest, videos / f"low_{seconds}.mp4", 0.0, seconds)
        )
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                LAUNCH,
                sys.executable,
                "-c",
                MEASURE_GROWTH,
                str(low_model),
                str(warm),
                str(long),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["start_kib"] < 100 * 1024, result  # a bare interpreter: the peak measured is its own
        assert result["windows"] == seconds - 2  # 1-s stride, 3-s windows
        growth[seconds] = result["growth_kib"]
    print("GROWTH", growth)
    assert abs(growth[60] - growth[30]) <= 2048, growth


@pytest.fixture
def count_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every `av.open` from now on, by path; the real function still opens the file."""
    opened: list[str] = []
    real = av.open

    def counting(file: Any, *args: Any, **kwargs: Any):
        opened.append(str(file))
        return real(file, *args, **kwargs)

    # `tiermem.video.decode` the attribute is the function; the module opens files with av.open.
    monkeypatch.setattr(importlib.import_module("tiermem.video.decode").av, "open", counting)
    return opened


def test_scan_opens_the_file_once(low_model: Path, intra_video: Path, count_opens: list[str]) -> None:
    low = Pipeline.load(low_model).fitted_tiers(Run())  # which tiers run does not change how the file is read
    features = scan(
        intra_video, low, WindowPlan(WINDOW, 1.0, PIPELINE_FRAMES), size=PIPELINE_SIZE, mode="stretch"
    )
    assert len(features.starts) == 10
    assert count_opens == [str(intra_video)]


def test_timeline_reads_the_header_and_decodes_once(
    low_model: Path, intra_video: Path, count_opens: list[str]
) -> None:
    model = Pipeline.load(low_model)
    count_opens.clear()
    pred = model.predict(intra_video, timeline=True, stride=1.0)
    assert len(pred.timelines["joined_intra"].table) == 10
    # One open reads the declared duration (to check the stride against it), one decodes.
    assert count_opens == [str(intra_video)] * 2


# -- 8. the summary ----------------------------------------------------------------------------


def test_summary_matches_the_table(pipe: Pipeline, intra_timeline) -> None:
    table, summary = intra_timeline.table, intra_timeline.summary
    scores = table["score"].to_numpy()
    assert summary["windows"] == len(table) == 5
    assert summary["mean"] == pytest.approx(scores.mean())
    for key, i in (("peak", int(np.argmax(scores))), ("trough", int(np.argmin(scores))), ("hook", 0)):
        assert summary[key] == {
            "score": pytest.approx(scores[i]),
            "start": table["start"][i],
            "end": table["end"][i],
        }, key
    assert summary["hook"]["start"] == 0.0
    median = float(np.median(pipe.train_predictions_))
    assert summary["training_median"] == pytest.approx(median)
    assert 0.0 <= summary["share_above_median"] <= 1.0
    assert summary["share_above_median"] == pytest.approx(np.mean(scores > median))
    assert summary["covered_s"] == [0.0, 11.0]
    line = intra_timeline.sparkline()
    assert len(line) == len(table)
    assert line[int(np.argmax(scores))] == SPARK[-1] and line[int(np.argmin(scores))] == SPARK[0]
    json.dumps(intra_timeline.records())  # JSON-able as it is


def test_sparkline_is_at_most_60_characters() -> None:
    assert len(sparkline(np.arange(100.0))) == 60
    assert sparkline(np.arange(100.0)) == "".join(sorted(sparkline(np.arange(100.0))))  # rising stays rising
    assert len(sparkline(np.arange(7.0))) == 7
    assert sparkline(np.full(5, 0.5)) == SPARK[len(SPARK) // 2] * 5  # flat: mid-height
    assert sparkline(np.zeros(0)) == ""


def test_prediction_row_is_the_mean_of_the_windows(pipe: Pipeline, intra_video: Path) -> None:
    pred = pipe.predict(intra_video)  # 12 s > 1.5 windows: a timeline by default
    tl = pred.timelines["joined_intra"]
    row = pred.table.iloc[0]
    assert row["score"] == pytest.approx(tl.table["score"].mean())
    assert row["percentile"] == pytest.approx(float(pipe.percentile(np.array([row["score"]]))[0]))
    for col in contrib_columns(tl.table):
        assert row[col] == pytest.approx(tl.table[col].mean())
    rows = pred.rows()  # what the CSV holds: one row per window
    assert len(rows) == len(tl.table) and rows["start"].tolist() == tl.table["start"].tolist()


# -- zero-shot -------------------------------------------------------------------------------


def test_zero_shot_timeline_uses_3_s_windows(intra_video: Path, tmp_path: Path) -> None:
    pytest.importorskip(
        "resmem", reason="the zero-shot model needs the optional ResMem extra: pip install 'tiermem[resmem]'"
    )
    from tiermem.zero_shot import ZeroShotModel

    six = copy_stretch(intra_video, tmp_path / "six.mp4", 0.0, 6.0)
    pred = ZeroShotModel().predict(six)  # 6 s > 1.5 windows of 3 s: a timeline
    tl = pred.timelines["six"]
    assert tl.length == 3.0
    # 5 frames per window (0.6 s apart), the stride snapped to 2 of them: [0, 3), [1.2, 4.2), [2.4, 5.4).
    assert tl.table["start"].tolist() == [0.0, 1.2, 2.4]
    assert (tl.table["end"] - tl.table["start"]).round(3).eq(3.0).all()
    prior = [np.mean(f["prior"]["prior_per_frame"]) for f in tl.facts]
    assert tl.table["score"].to_numpy() == pytest.approx(prior, abs=1e-3)  # the frames' mean ResMem
    assert np.isnan(pred.table["percentile"].iloc[0])  # one video: no rank to speak of


def test_a_window_given_asks_for_a_timeline(fitted, intra_video: Path) -> None:
    """`--window` alone asks for windows: too long for the video, it is refused as with
    `--timeline` (it was ignored, and the whole video scored as one clip)."""
    _, model, _ = fitted
    code, output = cli("predict", intra_video, "--model", model, "--window", "100")
    assert code == 1 and [line for line in output.splitlines() if line.startswith("error:")] == [
        f"error: {intra_video}: --window 100 s is longer than the video (12.00 s)"
    ], output

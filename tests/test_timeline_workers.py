"""Timelines on several workers: a long video's windows split into stretches, one per worker,
give the very windows one pass gives, and a stream that breaks ends the timeline at the break."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from processes import alive, descendants, holds_open, workers_running

import tiermem.extraction.timelines as timelines
from tiermem.extraction.pool import WorkerPool
from tiermem.extraction.timelines import stretches
from tiermem.extraction.windows import WindowPlan
from tiermem.pipeline import Pipeline
from tiermem.run import Run
from tiermem.video.samples import make_long_video
from tiermem.video.stream import declared_duration

#: Marked slow (worker processes started and killed): `make test-fast` leaves them out; CI runs them.
pytestmark = pytest.mark.slow

#: Scores of one pass (the process's threads) against workers (one thread each): networks
#: differ in the last float32 bits with their thread count (measured here: up to 4.4e-9).
ROUND_OFF = 1e-6


@pytest.fixture(scope="module")
def pipe(fitted: tuple[Pipeline, Path, Path]) -> Pipeline:
    return fitted[0]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("timeline_workers")


@pytest.fixture(scope="module")
def long_video(videos: Path) -> Path:
    """The sample videos joined into 16 s of 320x180 with a keyframe every second."""
    return make_long_video(videos / "joined.mp4", seconds=16, size=(320, 180), keyframe_every=25)


@pytest.fixture
def small_stretches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stretches of 3 windows or more, so a 16-s video is shared out between two workers."""
    monkeypatch.setattr(timelines, "MIN_WINDOWS_PER_STRETCH", 3)


def test_stretches_cover_every_window_once(long_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = WindowPlan(length=3.0, stride=1.0, frames=9)  # 14 windows start in [0, 13]
    declared = declared_duration(long_video)
    assert declared == pytest.approx(16.0)
    assert (
        len(stretches(long_video, plan, workers=4, size=64, mode="stretch", declared=declared)) == 1
    )  # too few to share
    monkeypatch.setattr(timelines, "MIN_WINDOWS_PER_STRETCH", 3)
    parts = stretches(long_video, plan, workers=4, size=64, mode="stretch", declared=declared)
    assert [(p.first, p.last) for p in parts] == [(0, 4), (4, 7), (7, 10), (10, None)]
    assert len(stretches(long_video, plan, workers=1, size=64, mode="stretch", declared=declared)) == 1


def test_two_workers_give_the_windows_of_one_pass(
    pipe: Pipeline, long_video: Path, small_stretches: None
) -> None:
    one = pipe.timeline(long_video, stride=1.0)
    steps: list[float] = []
    two = pipe.timeline(
        long_video, stride=1.0, run=Run(workers=2, on_progress=lambda s: steps.append(s.done))
    )
    assert one.failed is None and two.failed is None
    assert one.table["start"].tolist() == two.table["start"].tolist() == [float(k) for k in range(14)]
    for column in one.table:  # workers run networks at one thread each: float32 round-off apart
        if column != "changes":
            np.testing.assert_allclose(
                one.table[column].to_numpy(),
                two.table[column].to_numpy(),
                rtol=0,
                atol=ROUND_OFF,
                err_msg=column,
            )
    assert one.table["changes"].tolist() == two.table["changes"].tolist()
    assert np.ptp(one.table["score"]) > 1e-4  # the windows differ: the comparison has teeth
    assert steps == sorted(steps) and steps[-1] >= 15.0  # each stretch reports as it ends


def test_a_break_in_the_first_stretch_ends_the_timeline_there(
    pipe: Pipeline, videos: Path, long_video: Path, small_stretches: None
) -> None:
    """The container (moov first) declares all 16 s, the bytes stop halfway: the second stretch
    finds nothing to decode, and the timeline ends where the first one's decoding failed."""
    whole = videos / "faststart.mp4"
    with av.open(str(long_video)) as inp, av.open(str(whole), "w", options={"movflags": "faststart"}) as dst:
        stream = inp.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is not None:
                packet.stream = copy
                dst.mux(packet)
    data = whole.read_bytes()
    broken = videos / "half.mp4"
    broken.write_bytes(data[: len(data) // 2])
    one = pipe.timeline(broken, stride=1.0)
    two = pipe.timeline(broken, stride=1.0, run=Run(workers=2))
    assert one.failed is not None and one.failed.startswith("decoding failed at ")
    # The same place; FFmpeg words the cause by its decoder threads (one per worker here).
    assert two.failed.split(": ")[0] == one.failed.split(": ")[0]
    assert two.table["start"].tolist() == one.table["start"].tolist() and len(one.table) >= 2
    np.testing.assert_allclose(
        one.table["score"].to_numpy(), two.table["score"].to_numpy(), rtol=0, atol=ROUND_OFF
    )


def test_a_killed_worker_ends_the_timeline_where_its_stretch_began(
    fitted: tuple[Pipeline, Path, Path], videos: Path
) -> None:
    """SIGKILL (what the OOM killer sends) on one of the two workers scanning a 2-min video: the
    windows before its stretch stand, the reason names the death, and no process is left."""
    video = make_long_video(videos / "two_minutes.mp4", seconds=120, size=(320, 180), keyframe_every=25)
    tiermem = str(Path(sys.executable).with_name("tiermem"))
    proc = subprocess.Popen(
        [
            tiermem,
            "predict",
            str(video),
            "--model",
            str(fitted[1]),
            "--timeline",
            "--stride",
            "1",
            "--workers",
            "2",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    workers = workers_running(proc, 2, deadline)
    scanning: list[int] = []
    while not scanning and proc.poll() is None and time.monotonic() < deadline:
        scanning = [pid for pid in workers if holds_open(pid, video)]  # a worker opens the video to scan
        time.sleep(0.005)
    assert scanning, "no worker was seen scanning before the timeline ended"
    family = descendants(proc.pid)
    os.kill(scanning[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "the timeline stopped at " in stderr and "worker process died (out of memory?)" in stderr
    rows = json.loads(stdout) if stdout.strip() else []
    stopped = float(stderr.split("the timeline stopped at ")[1].split(" s")[0])
    assert stopped in (0.0, 59.0)  # where one of the two stretches of 118 windows begins
    for row in rows:  # the windows kept all lie before the stretch that was lost
        assert all(w["start"] < stopped for w in row["timeline"]["windows"])
    time.sleep(0.5)
    assert not [p for p in family if alive(p)]


def test_predict_of_several_long_videos_starts_the_workers_once(
    pipe: Pipeline, videos: Path, long_video: Path, small_stretches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each video's stretches go to the same workers, which keep their networks between videos."""
    second = make_long_video(videos / "joined_again.mp4", seconds=14, size=(320, 180), keyframe_every=25)
    started: list[int] = []
    real = WorkerPool.__init__

    def counting(self: WorkerPool, *args: object, **kwargs: object) -> None:
        started.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(WorkerPool, "__init__", counting)
    pred = pipe.predict([long_video, second], timeline=True, stride=1.0, run=Run(workers=2))
    assert len(started) == 1 and set(pred.timelines) == {"joined", "joined_again"}
    alone = pipe.timeline(second, stride=1.0)  # one pass, no worker
    assert len(started) == 1
    np.testing.assert_allclose(
        pred.timelines["joined_again"].table["score"].to_numpy(),
        alone.table["score"].to_numpy(),
        rtol=0,
        atol=ROUND_OFF,
    )
    assert len(alone.table) == 12

"""Durability: a server killed with SIGKILL mid-job, started again, finishes the job once, with
the result an uninterrupted run gives."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("uvicorn", reason="the service needs the serve extra: pip install 'tiermem[serve]'")

from serving import Server  # noqa: E402

from tiermem.pipeline import Pipeline  # noqa: E402
from tiermem.video.samples import make_long_video  # noqa: E402

#: Marked slow (real servers started, killed and started again): `make test-fast` leaves them out; CI runs them.
pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_job_survives_sigkill_and_is_scored_once(fitted: tuple[Any, Path, Path], tmp_path: Path) -> None:
    _, model, _ = fitted
    video = make_long_video(tmp_path / "long.mp4", seconds=40, size=(320, 180))
    data = tmp_path / "data"
    server = Server(model, data, tmp_path / "server.log").start()
    try:
        job = server.submit(video, stride="1")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # running, part of the video processed
            now = httpx.get(f"{server.url}/v1/jobs/{job['id']}").json()
            if now["status"] == "running" and now["progress"] > 0.05:
                break
            assert now["status"] in ("queued", "running"), now
            time.sleep(0.1)
        assert now["status"] == "running" and now["progress"] < 1.0, now
        with sqlite3.connect(data / "jobs.sqlite3") as db:
            worker = db.execute("SELECT worker FROM jobs WHERE id = ?", (job["id"],)).fetchone()[0]
        assert alive(worker)
        server.kill()
        time.sleep(1.0)
        assert not alive(worker)  # the worker died with its server: nothing scores on unseen
    finally:
        server.stop()
    again = Server(model, data, tmp_path / "server.log", port=server.port).start()
    try:
        done = again.wait_done(job["id"])
        listed = httpx.get(f"{again.url}/v1/jobs").json()
    finally:
        again.stop()
    assert done["status"] == "done", done
    assert listed["total"] == 1  # nothing lost, nothing added
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        attempts = db.execute("SELECT attempts FROM jobs WHERE id = ?", (job["id"],)).fetchone()[0]
        results = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    # Claimed twice (cut short, then finished), the killed server not counted against the video.
    assert attempts == 1 and results == 1
    uninterrupted = Pipeline.load(model).predict(video, timeline=True, stride=1.0)
    (rec,) = done["result"]
    windows = rec["timeline"]["windows"]
    expected = uninterrupted.timelines["long"].table
    assert [w["start"] for w in windows] == expected["start"].tolist()
    assert [w["score"] for w in windows] == pytest.approx(expected["score"].tolist(), abs=1e-9)
    assert rec["score"] == pytest.approx(float(uninterrupted.table["score"].iloc[0]), abs=1e-9)

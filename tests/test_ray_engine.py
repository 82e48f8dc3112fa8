"""Extraction on Ray: a real two-node cluster on this machine (`ray.cluster_utils.Cluster`, one
CPU per node), real sample clips, the low and mid tiers. Rows must equal the local engine's;
a node removed or a worker process killed mid-run costs retries, not rows; a corrupt video is
reported once; a killed driver's rerun completes the table from the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'tiermem[ray]'")
from ray.cluster_utils import Cluster  # noqa: E402

from tiermem.extraction import ExtractReport, extract  # noqa: E402
from tiermem.run import Engine, Run  # noqa: E402
from tiermem.store import FeatureStore  # noqa: E402
from tiermem.video.samples import make_sample_clips  # noqa: E402

#: Marked slow (a two-node Ray cluster): `make test-fast` leaves them out; CI runs them.
pytestmark = pytest.mark.slow

TIERS = ["low", "mid"]
#: Float32 round-off between processes with other thread counts (measured: 2e-6).
ROUND_OFF = 1e-5


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two nodes of one CPU each; Ray's start-up is paid once for the module."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample videos cut into 3-s clips every 0.5 s (about 30 clips)."""
    out = tmp_path_factory.mktemp("ray_clips")
    make_sample_clips(out, step=0.5)
    return out


@pytest.fixture(scope="module")
def local_store(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local_store")
    report = extract([clips], tiers=TIERS, out=out)
    assert not report.failed and len(report.done) >= 25
    return out


@pytest.fixture(scope="module")
def local_tables(local_store: Path) -> dict[str, pd.DataFrame]:
    return {t: FeatureStore(local_store).table(t) for t in TIERS}


def same_rows(store: Path, local: dict[str, pd.DataFrame]) -> None:
    for tier in TIERS:
        got = FeatureStore(store).table(tier)
        want = local[tier]
        assert list(got.columns) == list(want.columns)
        assert not got["video_id"].duplicated().any()
        assert sorted(got["video_id"]) == sorted(want["video_id"])  # none missing, none added
        got, want = got.set_index("video_id").sort_index(), want.set_index("video_id").sort_index()
        numeric = [c for c in want.columns if want[c].dtype.kind == "f"]
        np.testing.assert_allclose(got[numeric].to_numpy(), want[numeric].to_numpy(), atol=ROUND_OFF, rtol=0)
        assert (got.drop(columns=numeric) == want.drop(columns=numeric)).all().all()  # hashes, keys, facts


def worker_pids() -> list[int]:
    """Processes of Ray actors of tiermem's worker class (their title is set by the actor itself)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::_Worker"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def during_run(action, wait_for: int = 2, delay: float = 2.0) -> tuple[threading.Thread, dict[str, float]]:
    """Run `action` once `wait_for` worker processes exist plus `delay` s; note when it ran."""
    when: dict[str, float] = {}

    def run() -> None:
        deadline = time.monotonic() + 120
        while len(worker_pids()) < wait_for and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        action()
        when["done"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, when


def test_ray_rows_equal_local_rows(cluster: Cluster, clips: Path, local_tables, tmp_path: Path) -> None:
    report = extract([clips], tiers=TIERS, out=tmp_path, run=Run(workers=2, engine="ray"))
    assert not report.failed and len(report.done) == len(local_tables["low"])
    same_rows(tmp_path, local_tables)
    again = extract([clips], tiers=TIERS, out=tmp_path, run=Run(workers=2, engine="ray"))
    assert again.done == [] and len(again.skipped) == len(report.done)  # stored videos are not sent


def test_each_ray_worker_can_host_a_device_stage_of_its_own(
    cluster: Cluster, clips: Path, local_tables, tmp_path: Path
) -> None:
    """With a stage (on a GPU node by default; forced here on the CPU), each actor decodes and
    runs the low tier, and hands its clips to its own stage for the networks."""
    run = Run(workers=2, engine="ray", device="cpu", device_stage=True)
    report = extract([clips], tiers=TIERS, out=tmp_path, run=run)
    assert not report.failed and len(report.done) == len(local_tables["low"])
    assert len(report.device_batches) == len(report.done)  # every video went through a stage
    same_rows(tmp_path, local_tables)


def test_a_node_lost_mid_run_costs_no_row(
    cluster: Cluster, clips: Path, local_tables, tmp_path: Path
) -> None:
    other = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
    thread, when = during_run(lambda: cluster.remove_node(other))
    report = extract([clips], tiers=TIERS, out=tmp_path, run=Run(workers=2, engine="ray"))
    finished = time.monotonic()
    thread.join(timeout=10)
    try:
        assert when["done"] < finished  # the node went while the run was going on
        assert not report.failed, report.failed
        same_rows(tmp_path, local_tables)
    finally:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()


def test_a_killed_worker_process_is_retried(
    cluster: Cluster, clips: Path, local_tables, tmp_path: Path
) -> None:
    killed: list[int] = []

    def kill_one() -> None:
        pid = worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread, when = during_run(kill_one)
    report = extract([clips], tiers=TIERS, out=tmp_path, run=Run(workers=2, engine="ray"))
    finished = time.monotonic()
    thread.join(timeout=10)
    assert killed and when["done"] < finished
    assert not report.failed, report.failed
    same_rows(tmp_path, local_tables)


def test_a_corrupt_video_fails_alone(cluster: Cluster, sample_clip_paths: list[Path], tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for p in sample_clip_paths[:3]:
        (videos / p.name).write_bytes(p.read_bytes())
    data = sample_clip_paths[3].read_bytes()
    (videos / "broken.mp4").write_bytes(data[: len(data) // 3])  # the index is there, the frames are not
    report: ExtractReport = extract(
        [videos], tiers=["low"], out=tmp_path / "store", run=Run(workers=2, engine="ray")
    )
    assert report.done == sorted(p.stem for p in sample_clip_paths[:3])
    assert [Path(p).name for p, _ in report.failed] == ["broken.mp4"]
    reason = report.failed[0][1]
    assert "worker process died" not in reason and reason  # the decoder's reason, given once


def test_rerun_after_the_driver_is_killed_completes_the_table(
    cluster: Cluster, clips: Path, local_store: Path, local_tables, tmp_path: Path
) -> None:
    out = tmp_path / "store"
    # the local run's PCA (a run fitting its own writes no low row before its 200-video sample is in)
    cmd = [
        sys.executable,
        "-c",
        "from tiermem.cli import app; app()",
        "extract",
        str(clips),
        "--tiers",
        "low,mid",
        "--out",
        str(out),
        "--engine",
        "ray",
        "--ray-address",
        cluster.address,
        "--workers",
        "2",
        "--state",
        str(local_store),
        "--flush-every",
        "1",
    ]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    table = out / "low.parquet"
    while time.monotonic() < deadline and driver.poll() is None:
        stored = FeatureStore(out).table("low") if table.exists() else None
        if stored is not None and len(stored) >= 5:
            break
        time.sleep(0.1)
    assert driver.poll() is None, "the driver ended before it could be killed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    stored = FeatureStore(out)
    before = set(stored.table("low")["video_id"]) & set(stored.table("mid")["video_id"])  # both tiers written
    assert 0 < len(before) < len(local_tables["low"])
    done = subprocess.run(
        [*cmd[:-2], "--flush-every", "64", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rerun = json.loads(done.stdout)
    assert before <= set(rerun["skipped"])  # stored before the kill: not recomputed
    assert len(rerun["done"]) + len(rerun["skipped"]) == len(local_tables["low"])
    same_rows(out, local_tables)


def test_ray_missing_is_one_line(tmp_path: Path, sample_clip_paths: list[Path]) -> None:
    """Where Ray is not installed (hidden from this interpreter), --engine ray says which extra to install."""
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from tiermem.cli import app\n"
        f"app(['extract', {str(sample_clip_paths[0])!r}, '--out', {str(tmp_path / 'o')!r}, '--engine', 'ray'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines == ["error: --engine ray needs Ray: pip install 'tiermem[ray]'"], done.stderr


def test_engine_options_are_checked(tmp_path: Path, sample_clip_paths: list[Path]) -> None:
    from typer.testing import CliRunner

    from tiermem.cli import app

    for args, message in (
        (["--engine", "spark"], "--engine must be one of local, ray"),
        (["--ray-address", "auto"], "apply to --engine ray only"),
        (["--engine", "ray", "--cpus-per-worker", "0"], "--cpus-per-worker must be positive"),
        (
            ["--engine", "ray", "--tiers", "mid", "--device", "cuda"],
            "--device cuda on Ray needs --gpus-per-worker",
        ),
    ):
        result = CliRunner().invoke(
            app, ["extract", str(sample_clip_paths[0]), "--out", str(tmp_path / "o"), *args]
        )
        assert result.exit_code == 1 and message in result.output, result.output


def test_predict_on_ray_scores_as_local(cluster: Cluster, fitted, sample_clip_paths: list[Path]) -> None:
    pipe = fitted[0]
    here = pipe.predict(sample_clip_paths, timeline=False)
    there = pipe.predict(sample_clip_paths, timeline=False, run=Run(workers=2, engine="ray"))
    assert there.table["video_id"].tolist() == here.table["video_id"].tolist()
    np.testing.assert_allclose(there.table["score"], here.table["score"], atol=ROUND_OFF)


def test_a_timeline_on_ray_is_the_local_one(
    cluster: Cluster, fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long video's stretches of windows go to Ray actors as they go to local workers."""
    import tiermem.extraction.timelines as timelines
    from tiermem.video.samples import make_long_video

    monkeypatch.setattr(timelines, "MIN_WINDOWS_PER_STRETCH", 3)  # 10 windows: two stretches
    video = make_long_video(tmp_path / "joined.mp4", seconds=12, size=(320, 180), keyframe_every=25)
    pipe = fitted[0]
    here = pipe.timeline(video, stride=1.0)
    there = pipe.timeline(video, stride=1.0, run=Run(workers=2, engine="ray"))
    assert there.failed is None and there.table["start"].tolist() == here.table["start"].tolist()
    assert len(here.table) == 10
    np.testing.assert_allclose(there.table["score"], here.table["score"], atol=ROUND_OFF)


def test_workers_that_cannot_be_placed_fail_in_one_line(
    cluster: Cluster, sample_clip_paths: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers asking for more CPUs than any node has never start: the run says so instead of waiting forever."""
    from tiermem.errors import TiermemError
    from tiermem.extraction import ray_pool

    monkeypatch.setattr(ray_pool, "START_TIMEOUT_S", 3.0)
    with pytest.raises(
        TiermemError, match=r"no Ray worker started within 3 s: the cluster has no room for a worker of 8 CPU"
    ):
        extract(
            sample_clip_paths[:2],
            tiers=["low"],
            out=tmp_path,
            run=Run(engine=Engine("ray", cpus_per_worker=8)),
        )

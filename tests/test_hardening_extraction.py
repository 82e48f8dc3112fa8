"""Extraction under hostile conditions: broken links, unreadable folders, clashing ids, bad output
places, damaged caches, dying workers, a killed parent, and memory limits. Real clips, the real
CLI (in process, or as a subprocess where processes, signals or permissions are the point)."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from processes import alive, cpu_seconds, descendants, workers_running
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.errors import TiermemError
from tiermem.extraction import extract_videos
from tiermem.store import FeatureStore
from tiermem.tiers.low import LowTier
from tiermem.video import decode

TIERMEM = str(Path(sys.executable).with_name("tiermem"))
FAST = ["--frames", "9", "--size", "128"]
runner = CliRunner()
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _run(*args: str):
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _extract_json(*args: str) -> tuple[int, dict]:
    result = _run("extract", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def _reasons(rep: dict) -> dict[str, str]:
    return {Path(f["path"]).name: f["reason"] for f in rep["failed"]}


def _clip(sample_clip_paths: list[Path], stem: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(next(p for p in sample_clip_paths if p.stem == stem), dest)
    return dest


@pytest.fixture(scope="module")
def fitted_state(sample_clip_paths: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the low tier's state fitted at the FAST settings (runs can skip fitting)."""
    out = tmp_path_factory.mktemp("state")
    assert _extract_json(*map(str, sample_clip_paths), "--out", str(out), *FAST)[0] == 0
    return out


@pytest.fixture()
def corpus(sample_clip_paths: list[Path], tmp_path: Path) -> Path:
    """24 clips (hard links cycling over the sample clips, distinct ids): runs long enough to disturb."""
    dest = tmp_path / "corpus"
    dest.mkdir()
    for i in range(24):
        src = sample_clip_paths[i % len(sample_clip_paths)]
        os.link(src, dest / f"v{i:02d}_{src.stem}.mp4")
    return dest


def _as_plain_user(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed CLI, for which permission bits count even when the tests run as root."""
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:  # the capabilities that let root ignore file modes
        for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
            if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                os._exit(97)

    result = subprocess.run(
        [TIERMEM, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=drop if os.geteuid() == 0 else None,
    )
    if result.returncode == 97:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here, so unreadable files cannot be made")
    return result


# -- 1, 2: links and folders that cannot be read ----------------------------------------------
def test_a_symlink_loop_named_on_the_command_line_is_one_failed_input(
    sample_clip_paths: list[Path], fitted_state: Path, tmp_path: Path
) -> None:
    good = _clip(sample_clip_paths, "bikes_000", tmp_path / "good.mp4")
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    code, rep = _extract_json(
        str(loop),
        str(good),
        "--tiers",
        "low",
        "--out",
        str(tmp_path / "f"),
        *FAST,
        "--state",
        str(fitted_state),
    )
    assert code == 1
    assert rep["done"] == ["good"]
    assert rep["failed"] == [{"path": str(loop), "reason": "symlink loop"}]
    info = _run("info", str(loop))
    assert info.exit_code == 1 and info.output.strip() == f"error: {loop}: symlink loop"


def test_broken_links_inside_a_folder_are_failures_with_their_reason(
    sample_clip_paths: list[Path], fitted_state: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    _clip(sample_clip_paths, "bikes_000", videos / "good.mp4")
    (videos / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    (videos / "loop.mkv").symlink_to("loop.mkv")
    (videos / "old_folder").symlink_to(tmp_path / "moved")  # a link to a folder that is gone
    (videos / "notes.txt").symlink_to(tmp_path / "gone.txt")  # not a video name: not picked up
    code, rep = _extract_json(str(videos), "--out", str(tmp_path / "f"), *FAST, "--state", str(fitted_state))
    assert code == 1 and rep["done"] == ["good"]
    reasons = _reasons(rep)
    assert set(reasons) == {"dangling.mp4", "loop.mkv", "old_folder"}
    assert (
        reasons["dangling.mp4"]
        == f"dangling symlink (points to {tmp_path / 'gone.mp4'}, which does not exist)"
    )
    assert reasons["loop.mkv"] == "symlink loop"
    assert reasons["old_folder"].startswith("dangling symlink")


def test_a_folder_that_cannot_be_listed_is_a_failure_and_the_rest_is_extracted(
    sample_clip_paths: list[Path], fitted_state: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    _clip(sample_clip_paths, "bikes_000", videos / "good.mp4")
    locked = videos / "locked"
    _clip(sample_clip_paths, "bikes_001", locked / "hidden.mp4")
    locked.chmod(0)
    try:
        result = _as_plain_user(
            "extract",
            str(videos),
            "--out",
            str(tmp_path / "f"),
            *FAST,
            "--state",
            str(fitted_state),
            "--json",
        )
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1, result.stderr
    rep = json.loads(result.stdout)
    assert rep["done"] == ["good"]
    assert rep["failed"] == [{"path": str(locked), "reason": "cannot list folder (Permission denied)"}]


# -- 3: one id, two files -----------------------------------------------------------------------
def test_two_files_with_one_id_fail_and_the_others_are_extracted(
    sample_clip_paths: list[Path], fitted_state: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    first = _clip(sample_clip_paths, "bikes_000", videos / "x.mp4")
    second = _clip(sample_clip_paths, "bikes_001", videos / "x.mkv")
    _clip(sample_clip_paths, "carphone_pristine_000", videos / "other.mp4")
    code, rep = _extract_json(str(videos), "--out", str(tmp_path / "f"), *FAST, "--state", str(fitted_state))
    assert code == 1
    assert rep["done"] == ["other"]
    assert sorted(rep["failed"], key=lambda f: f["path"]) == [
        {"path": str(second), "reason": f"video id 'x' is used by more than one file (also {first})"},
        {"path": str(first), "reason": f"video id 'x' is used by more than one file (also {second})"},
    ]


# -- 4: where the store cannot be --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_an_output_that_cannot_be_a_store_is_one_line_and_writes_nothing(
    sample_clip_paths: list[Path], tmp_path: Path, kind: str
) -> None:
    clip = _clip(sample_clip_paths, "bikes_000", tmp_path / "a.mp4")
    if kind == "file":
        out = tmp_path / "f"
        out.write_text("x\n")
        expected = f"error: {out}: is a file, not a directory (the feature store is a directory)"
    else:
        out = Path("/proc/tiermem-test-store")  # no directory can be created under /proc, even by root
        expected = f"error: {out}: cannot create the feature store directory ("
    result = _run("extract", str(clip), "--tiers", "low", "--out", str(out), *FAST)
    assert result.exit_code == 1
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1
    assert (out.read_text() == "x\n") if kind == "file" else not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["a.mp4", "f"] if kind == "file" else ["a.mp4"])


# -- 5: frame size ------------------------------------------------------------------------------
def test_frames_too_small_for_hog_are_refused_where_the_option_is_read(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    clip = _clip(sample_clip_paths, "bikes_000", tmp_path / "a.mp4")
    for size in ("8", "12", "15"):
        result = _run(
            "extract", str(clip), "--out", str(tmp_path / f"f{size}"), "--frames", "9", "--size", size
        )
        assert result.exit_code == 1 and result.stderr == f"error: --size must be >= 16, got {size}\n"
        assert not (tmp_path / f"f{size}").exists()
    code, rep = _extract_json(str(clip), "--out", str(tmp_path / "f16"), "--frames", "9", "--size", "16")
    assert code == 0 and rep["done"] == ["a"]
    with pytest.raises(
        TiermemError, match="frame size 12: tier low needs frames of at least 16 pixels a side"
    ):
        extract_videos([clip], out=tmp_path / "api", frames=9, size=12)


# -- 6: damaged cache files ---------------------------------------------------------------------
def test_damaged_cache_files_are_set_aside_and_rebuilt_a_damaged_given_state_is_refused(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    out, clips = tmp_path / "f", [str(p) for p in sample_clip_paths[:3]]
    assert _extract_json(*clips, "--out", str(out), *FAST)[0] == 0
    table, state = out / "low.parquet", out / "low.state.npz"
    table.write_bytes(table.read_bytes()[:5000])
    state.write_bytes(state.read_bytes()[:2000])
    given = Path(shutil.copy(state, tmp_path / "given.state.npz"))
    result = _run("extract", *clips, "--out", str(out), *FAST, "--json")
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    assert len(rep["done"]) == 3 and rep["fitted"] == ["low"] and len(FeatureStore(out).table("low")) == 3
    expected = {
        table: ("not a readable feature table (", 5000, "recomputing"),
        state: ("not a tiermem tier state file", 2000, "refitting"),
    }
    for damaged, (why, size, then) in expected.items():  # each kept aside, said in one line
        moved = list(out.glob(f"{damaged.name}.corrupt-*"))
        assert len(moved) == 1 and moved[0].stat().st_size == size
        lines = result.stderr.splitlines()
        assert any(
            x.startswith(f"{damaged}: {why}") and x.endswith(f"moved to {moved[0]}, {then}") for x in lines
        )
    result = _run("extract", *clips, "--out", str(tmp_path / "g"), *FAST, "--state", str(given))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {given}: not a tiermem tier state file")
    assert not (tmp_path / "g").exists()


# -- 7: a worker process dies --------------------------------------------------------------------
@pytest.mark.parametrize(
    "staged",
    [[], ["--tiers", "low,mid", "--device-stage"]],
    ids=["low", "low+mid through the device stage"],
)
def test_a_killed_worker_costs_only_its_own_videos(
    corpus: Path, fitted_state: Path, tmp_path: Path, staged: list[str]
) -> None:
    """With the device stage the worker only decodes and runs the low tier; the networks run in
    the calling process, so a killed worker costs at most its batch and every other video gets
    both tiers. (There the workers often wait on the stage, idle, when the kill comes: then
    nothing fails and the pool carries on with fresh workers.)"""
    out = tmp_path / "f"
    proc = subprocess.Popen(
        [
            TIERMEM,
            "extract",
            str(corpus),
            "--out",
            str(out),
            *FAST,
            *staged,
            "--state",
            str(fitted_state),
            "--workers",
            "2",
            "--batch-size",
            "2",
            "--flush-every",
            "1",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    workers = workers_running(proc, 2, deadline)
    while not (out / "low.parquet").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before a worker could be killed"
    # The worker that used more CPU has finished a task, so it is busy with the next one.
    victim = max(workers, key=cpu_seconds)
    os.kill(victim, signal.SIGKILL)  # what the kernel's OOM killer does
    stdout, stderr = proc.communicate(timeout=120)
    rep = json.loads(stdout)
    assert proc.returncode == (1 if rep["failed"] else 0), stderr
    assert (0 if staged else 1) <= len(rep["failed"]) <= 2  # the one batch that ran on the killed worker
    assert {f["reason"] for f in rep["failed"]} <= {"worker process died (out of memory?)"}
    assert len(rep["done"]) + len(rep["failed"]) == 24
    for tier in rep["tiers"]:
        assert sorted(FeatureStore(out).table(tier)["video_id"]) == rep["done"]


# -- 8: undecodable inputs, one clip alone -------------------------------------------------------
def test_when_no_input_decodes_each_reason_is_listed(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "notes.mp4").write_text("not a video\n" * 20)
    (videos / "empty.webm").write_bytes(b"")
    code, rep = _extract_json(str(videos), "--out", str(tmp_path / "f"), *FAST)
    assert code == 1 and rep["done"] == [] and rep["fitted"] == []
    reasons = _reasons(rep)
    assert reasons["empty.webm"] == "empty file (0 bytes)"
    assert reasons["notes.mp4"].startswith("not a video, or a truncated/corrupt container")


def test_one_clip_alone_is_extracted_and_larger_corpora_fit_as_before(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    code, rep = _extract_json(str(sample_clip_paths[1]), "--out", str(tmp_path / "one"), *FAST)
    assert code == 0 and rep["done"] == [sample_clip_paths[1].stem] and rep["fitted"] == ["low"]
    saved = FeatureStore(tmp_path / "one").load_state("low")
    assert saved.config["frames"] == 40 and saved.state["hog_pca_frames"] == 40

    # Five or more clips: 9 frames each, the state exactly what fitting on those frames gives.
    clips = sample_clip_paths[:5]
    assert _extract_json(*map(str, clips), "--out", str(tmp_path / "five"), *FAST)[0] == 0
    saved = FeatureStore(tmp_path / "five").load_state("low")
    assert saved.config["frames"] == 9
    reference = LowTier().fit(decode(p, frames=9, size=128) for p in clips).state_dict()
    np.testing.assert_array_equal(saved.state["hog_pca_components"], reference["hog_pca_components"])
    np.testing.assert_array_equal(saved.state["hog_pca_mean"], reference["hog_pca_mean"])


# -- 9, 10: messages that say what happened, on stderr ------------------------------------------
@pytest.mark.parametrize("command", ["extract", "predict"])
def test_an_empty_folder_is_named_as_given(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "emptydir"
    empty.mkdir()
    args = [command, f"{empty}/"] + (["--out", str(tmp_path / "f")] if command == "extract" else [])
    result = _run(*args)
    assert result.exit_code == 1
    assert result.stderr == f"error: no video files (.mp4, .webm, .mov, .avi, .mkv) in {empty}/\n"


def test_info_says_why_a_path_cannot_be_read(tmp_path: Path) -> None:
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    locked = tmp_path / "locked.mp4"
    locked.write_bytes(b"\x00" * 100)
    locked.chmod(0)
    expected = {
        folder: "is a directory, not a video file",
        fifo: "not a regular file: a named pipe (FIFO)",  # opening it would block for ever
        locked: "cannot open file (Permission denied)",
    }
    for path, reason in expected.items():
        result = _as_plain_user("info", str(path), timeout=60)
        assert result.returncode == 1
        assert result.stderr == f"error: {path}: {reason}\n"


def test_a_bad_weights_file_is_one_line_once(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    import pickle
    from fractions import Fraction

    bad = tmp_path / "bad.pth"
    bad.write_bytes(pickle.dumps({"w": Fraction(1, 3)}))  # a pickle with a class in it: refused unread
    clips = [str(p) for p in sample_clip_paths[:2]]
    result = _run(
        "extract", *clips, "--tiers", "mid", "--weights", f"mid={bad}", "--out", str(tmp_path / "f"), *FAST
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if "bad.pth" in line]
    assert len(errors) == 1  # once for the run, not once per video
    assert errors[0].startswith(
        f"error: {bad}: not a safetensors or weights-only torch file (not a plain state dict of tensors: "
    )
    assert "weights_only" not in result.stderr and "Warning" not in result.stderr


def test_failure_lines_go_to_stderr(
    sample_clip_paths: list[Path], fitted_state: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    _clip(sample_clip_paths, "bikes_000", videos / "good.mp4")
    (videos / "bad.mp4").write_text("not a video\n")
    result = _run("extract", str(videos), "--out", str(tmp_path / "f"), *FAST, "--state", str(fitted_state))
    assert result.exit_code == 1
    assert "bad.mp4" not in result.stdout and "1 failed" not in result.stdout
    assert f"✗ {videos / 'bad.mp4'}: not a video" in result.stderr


# -- 11: the parent dies --------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_parent_leaves_no_process_behind(
    corpus: Path, fitted_state: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    proc = subprocess.Popen(
        [
            TIERMEM,
            "extract",
            str(corpus),
            "--out",
            str(tmp_path / "f"),
            *FAST,
            "--state",
            str(fitted_state),
            "--workers",
            "2",
            "--batch-size",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers_running(proc, 2, time.monotonic() + 120)
    family = descendants(proc.pid)  # forkserver, resource tracker, workers
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(map(alive, family)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in family if alive(p)]


# -- 12: memory ------------------------------------------------------------------------------------
def test_frames_that_would_not_fit_in_memory_are_refused_before_any_work(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    clip = _clip(sample_clip_paths, "bikes_000", tmp_path / "a.mp4")
    out = tmp_path / "f"
    result = _run(
        "extract", str(clip), "--out", str(out), "--frames", "3000", "--size", "256", "--workers", "2"
    )
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --frames 3000 at --size 256 decodes ")
    assert (
        "MiB of frames per video; 2 worker(s) at once need 1.10 GiB, over the 1.00 GiB allowed"
        in result.stderr
    )
    assert "lower --frames, --size or --workers" in result.stderr
    assert not out.exists()


def test_low_tier_memory_does_not_grow_with_the_frame_count(
    sample_clip_paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tier = LowTier().fit(decode(p, frames=9, size=128) for p in sample_clip_paths)
    clip = decode(sample_clip_paths[1], frames=600, size=128)
    tracemalloc.start()
    try:
        chunked = tier.transform(clip)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < clip.frames.nbytes  # working memory below the decoded frames themselves
    monkeypatch.setattr(LowTier, "frame_batch", 10_000)  # the whole clip at once, as one batch
    np.testing.assert_allclose(chunked, tier.transform(clip), rtol=1e-6)


def test_resmem_is_loaded_without_a_second_copy_of_its_weights() -> None:
    pytest.importorskip("resmem")
    code = (
        "import resource, torch, torchvision\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "from tiermem.tiers.prior import load_resmem\n"
        "model = load_resmem()\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    grown = int(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert grown < 250  # MiB; building the network and then loading its 503 MiB of weights held both


def test_zero_shot_scores_the_same_frames_it_decodes(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("resmem")
    import tiermem

    clips = sample_clip_paths[1:3]
    scores = tiermem.load("zero-shot").predict(clips).table.set_index("video_id")["score"]
    assert extract_videos(clips, tiers=["prior"], out=tmp_path / "f", frames=45, size=256).ok
    prior = FeatureStore(tmp_path / "f").table("prior").set_index("video_id")["prior_mean"]
    np.testing.assert_allclose(scores.loc[prior.index].to_numpy(), prior.to_numpy(), atol=1e-6)

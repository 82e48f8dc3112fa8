"""`tiermem extract / info / demo` on real clips: cache hits, recomputation, bad files, kill and resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tiermem import __version__
from tiermem.cli import app
from tiermem.store import KEY_COLUMNS, FeatureStore

TIERMEM = str(Path(sys.executable).with_name("tiermem"))
runner = CliRunner()
FAST = ["--frames", "9", "--size", "128"]  # these tests check caching, not feature values


def _run(*args: str):
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _invoke(*args: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = _run(*args)
    return result.exit_code, result.output


def _extract_json(*args: str) -> tuple[int, dict]:
    """Exit code and the report `tiermem extract --json` prints on stdout."""
    result = _run("extract", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture()
def three_clips(sample_clip_paths: list[Path], tmp_path: Path) -> Path:
    """Three real clips of different sources in a fresh directory (tests may overwrite them)."""
    d = tmp_path / "clips"
    d.mkdir()
    for name in ("bikes_000", "carphone_pristine_000", "bigbuckbunny_000"):
        src = next(p for p in sample_clip_paths if p.stem == name)
        shutil.copy(src, d / src.name)
    return d


def test_version_from_the_installed_script() -> None:
    out = subprocess.run([TIERMEM, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"tiermem {__version__}"


@pytest.mark.parametrize("command", ["extract", "info", "demo"])
def test_help_shows_an_example(command: str) -> None:
    code, output = _invoke(command, "--help")
    assert code == 0
    assert f"Example: tiermem {command}" in output


def test_info_on_a_real_clip_as_table_and_json(sample_clip_paths: list[Path]) -> None:
    clip = next(p for p in sample_clip_paths if p.stem == "bikes_000")
    code, output = _invoke("info", str(clip), "--json")
    assert code == 0
    meta = json.loads(output)
    # bikes.mp4 is 640x272 at 25 fps; the fixture cut 3 s = 75 frames of it
    assert (meta["width"], meta["height"], meta["frame_count"]) == (640, 272, 75)
    assert meta["fps"] == pytest.approx(25.0)
    assert meta["duration"] == pytest.approx(3.0, abs=0.05)
    assert meta["file_size"] == clip.stat().st_size
    assert meta["codec"] == "h264" and meta["has_audio"] is False
    code, output = _invoke("info", str(clip))
    assert code == 0
    assert "640 × 272" in output and "75" in output and "25.000 fps" in output


def test_info_on_a_text_file_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("these are not video bytes\n" * 10)
    code, output = _invoke("info", str(bad))
    assert code == 1
    assert f"error: {bad}:" in output
    assert "Traceback" not in output


def test_rerun_hits_the_cache_and_changed_settings_or_bytes_recompute(
    three_clips: Path, tmp_path: Path
) -> None:
    out = tmp_path / "features"
    code, rep = _extract_json(str(three_clips), "--out", str(out), *FAST)
    assert code == 0, rep
    assert rep["done"] == ["bigbuckbunny_000", "bikes_000", "carphone_pristine_000"]
    assert rep["skipped"] == [] and rep["failed"] == [] and rep["fitted"] == ["low"]
    store = FeatureStore(out)
    first = store.table("low")
    assert list(first["video_id"]) == rep["done"]
    features = [c for c in first.columns if c not in KEY_COLUMNS]
    assert {"brightness_mean", "flow_mean", "hog_pca_0_mean"} <= set(features)
    assert np.isfinite(first[features].to_numpy()).all()
    assert first["config_hash"].nunique() == 1
    assert store.state_path("low").exists()
    table_file = store.table_path("low")
    stamp = table_file.stat().st_mtime_ns, table_file.stat().st_ino

    # same bytes, same settings: nothing recomputed, the table file not even rewritten
    code, rep = _extract_json(str(three_clips), "--out", str(out), *FAST)
    assert code == 0
    assert rep["done"] == [] and rep["fitted"] == []
    assert rep["skipped"] == ["bigbuckbunny_000", "bikes_000", "carphone_pristine_000"]
    assert (table_file.stat().st_mtime_ns, table_file.stat().st_ino) == stamp

    # another frame count: every row recomputed under a new config hash, the fitted PCA reused
    code, rep = _extract_json(str(three_clips), "--out", str(out), "--frames", "7", "--size", "128")
    assert code == 0
    assert len(rep["done"]) == 3 and rep["skipped"] == [] and rep["fitted"] == []
    fewer = FeatureStore(out).table("low")
    assert fewer["config_hash"].nunique() == 1
    assert fewer["config_hash"].iloc[0] != first["config_hash"].iloc[0]
    assert not np.allclose(fewer["flow_mean"], first["flow_mean"])  # 7 frames: larger steps

    # another frame size: HOG has other dimensions, so the PCA is refitted, then all recomputed
    code, rep = _extract_json(str(three_clips), "--out", str(out), "--frames", "9", "--size", "96")
    assert code == 0
    assert len(rep["done"]) == 3 and rep["skipped"] == [] and rep["fitted"] == ["low"]
    assert FeatureStore(out).load_state("low").config["decode"] == {"size": 96, "mode": "stretch"}
    resized = FeatureStore(out).table("low")
    assert len(resized) == 3 and resized["config_hash"].nunique() == 1
    assert resized["config_hash"].iloc[0] not in (first["config_hash"].iloc[0], fewer["config_hash"].iloc[0])

    # one file's bytes replaced by another clip's: only that video is recomputed, and it now
    # carries the other clip's features
    shutil.copy(three_clips / "bikes_000.mp4", three_clips / "carphone_pristine_000.mp4")
    code, rep = _extract_json(str(three_clips), "--out", str(out), "--frames", "9", "--size", "96")
    assert code == 0
    assert rep["done"] == ["carphone_pristine_000"]
    assert rep["skipped"] == ["bigbuckbunny_000", "bikes_000"]
    after = FeatureStore(out).table("low").set_index("video_id")
    np.testing.assert_array_equal(
        after.loc["carphone_pristine_000", features].to_numpy(), after.loc["bikes_000", features].to_numpy()
    )


def test_bad_files_among_good_ones_are_reported_and_the_rest_extracted(
    three_clips: Path, tmp_path: Path
) -> None:
    (three_clips / "text.mp4").write_text("not a video at all\n" * 50)
    (three_clips / "empty.webm").write_bytes(b"")
    good = (three_clips / "bikes_000.mp4").read_bytes()
    (three_clips / "truncated.mp4").write_bytes(good[: len(good) // 50])
    (three_clips / "readme.txt").write_text("not picked up: not a video extension")
    out = tmp_path / "features"
    code, output = _invoke("extract", str(three_clips), "--out", str(out), *FAST)
    assert code == 1
    for name in ("text.mp4", "empty.webm", "truncated.mp4"):
        assert name in output
    assert "readme.txt" not in output
    code, rep = _extract_json(str(three_clips), "--out", str(out), *FAST)
    assert code == 1
    # the good ones were stored by the first run; each bad one is retried and reported again
    assert rep["skipped"] == ["bigbuckbunny_000", "bikes_000", "carphone_pristine_000"]
    reasons = {Path(p).name: r for p, r in (f.values() for f in rep["failed"])}
    assert set(reasons) == {"empty.webm", "text.mp4", "truncated.mp4"}
    assert "empty" in reasons["empty.webm"]
    assert all(r and "Traceback" not in r for r in reasons.values())
    assert list(FeatureStore(out).table("low")["video_id"]) == rep["skipped"]


def test_missing_path_is_a_failure_and_duplicate_ids_are_refused(three_clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "features"
    one = three_clips / "bikes_000.mp4"
    alone = tmp_path / "alone"
    code, output = _invoke("extract", str(one), "--out", str(alone), *FAST)
    assert code == 0, output  # one video is enough: its fit decodes it at more frames (40, not 9)
    assert FeatureStore(alone).load_state("low").config["frames"] == 40
    assert list(FeatureStore(alone).table("low")["video_id"]) == ["bikes_000"]
    code, rep = _extract_json(
        str(one),
        str(three_clips / "bigbuckbunny_000.mp4"),
        str(tmp_path / "nope.mp4"),
        "--out",
        str(out),
        *FAST,
    )
    assert code == 1
    assert rep["done"] == ["bigbuckbunny_000", "bikes_000"]
    assert rep["failed"] == [{"path": str(tmp_path / "nope.mp4"), "reason": "file not found"}]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(three_clips / "bikes_000.mp4", other / "bikes_000.mp4")
    code, output = _invoke("extract", str(three_clips), str(other), "--out", str(out), *FAST)
    assert code == 1
    assert "'bikes_000'" in output and "more than one file" in output


def test_two_workers_with_a_given_state_match_one_worker(three_clips: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert _extract_json(str(three_clips), "--out", str(one), *FAST)[0] == 0
    code, rep = _extract_json(
        str(three_clips), "--out", str(two), *FAST, "--workers", "2", "--batch-size", "1", "--state", str(one)
    )
    assert code == 0 and rep["fitted"] == [] and len(rep["done"]) == 3
    pd.testing.assert_frame_equal(FeatureStore(one).table("low"), FeatureStore(two).table("low"))


def _copies(sample_clip_paths: list[Path], dest: Path, n: int) -> Path:
    """`n` files cycling over the sample clips (distinct ids, some equal bytes): a longer run."""
    dest.mkdir()
    for i in range(n):
        src = sample_clip_paths[i % len(sample_clip_paths)]
        os.link(src, dest / f"v{i:02d}_{src.stem}.mp4")
    return dest


def test_killed_run_keeps_an_intact_table_and_the_rerun_finishes_it(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    # One video per task and enough of them that the kill lands mid-run even on a fast machine;
    # the PCA learns from 4 of them, extracted first (no low row is written before it is fitted).
    videos = _copies(sample_clip_paths, tmp_path / "videos", 32)
    args = [str(videos), *FAST, "--flush-every", "1", "--batch-size", "1", "--fit-videos", "4"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert _extract_json(*args, "--out", str(reference))[0] == 0
    expected = FeatureStore(reference).table("low")
    assert len(expected) == 32

    env = {**os.environ, "TIERMEM_THREADS": "1"}
    proc = subprocess.Popen(
        [TIERMEM, "extract", *args, "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    table = killed / "low.parquet"

    def rows_on_disk() -> int:
        return pq.read_metadata(table).num_rows if table.exists() else 0

    deadline = time.monotonic() + 300
    # a few flushes in, so the kill lands while the table is being rewritten over and over
    while rows_on_disk() < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    partial = FeatureStore(killed).table("low")  # a whole Parquet file, not a torn one
    assert 3 <= len(partial) < 32
    pd.testing.assert_frame_equal(
        partial.reset_index(drop=True),
        expected[expected.video_id.isin(partial.video_id)].reset_index(drop=True),
    )

    code, rep = _extract_json(*args, "--out", str(killed))
    assert code == 0
    assert rep["fitted"] == []  # the saved PCA was reused, so the finished rows stay valid
    assert len(rep["skipped"]) == len(partial) and len(rep["done"]) == 32 - len(partial)
    pd.testing.assert_frame_equal(FeatureStore(killed).table("low"), expected)
    assert not list(killed.glob(".*.tmp"))


@pytest.mark.slow
def test_a_resumed_low_mid_run_on_two_workers_is_bit_identical(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    """Killed after its first flushes and run again, a two-worker low+mid extraction writes the
    very bytes of an uninterrupted one: a video's features depend neither on the batch it was
    in, nor on which process computed it, nor on the fit being made on this pass or read back."""
    videos = _copies(sample_clip_paths, tmp_path / "videos", 16)
    args = [
        str(videos),
        *FAST,
        "--tiers",
        "low,mid",
        "--workers",
        "2",
        "--flush-every",
        "2",
        "--fit-videos",
        "4",
    ]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert _extract_json(*args, "--out", str(reference))[0] == 0
    proc = subprocess.Popen(
        [TIERMEM, "extract", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (killed / "low.parquet").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = {
        t: len(FeatureStore(killed).table(t))
        for t in ("low", "mid")
        if FeatureStore(killed).table(t) is not None
    }
    assert 0 < rows["low"] < 16  # the kill landed mid-run
    code, rep = _extract_json(*args, "--out", str(killed))
    assert code == 0 and rep["fitted"] == []  # the saved PCA was read back, not fitted again
    for tier in ("low", "mid"):
        want = FeatureStore(reference).table(tier).set_index("video_id").sort_index()
        got = FeatureStore(killed).table(tier).set_index("video_id").sort_index()
        columns = [c for c in want.columns if c not in KEY_COLUMNS]
        assert list(got.index) == list(want.index)
        assert np.array_equal(got[columns].to_numpy(), want[columns].to_numpy()), tier


def test_extract_every_tier_writes_one_table_per_tier(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    """`tiermem extract --tiers low,mid,high,text` on the sample clips: the documented columns per tier.

    The high tier loads a local weights file through `--weights high=PATH`; the file holds a
    random-init r2plus1d_18 saved by this test (no Kinetics weights offline), so its features
    are plumbing only. The captions are written by the test.
    """
    import torch
    import torchvision

    clips = sample_clip_paths[:3]
    weights = tmp_path / "r2plus1d_18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.video.r2plus1d_18(weights=None).state_dict(), weights)
    captions = tmp_path / "captions.csv"
    pd.DataFrame(
        {
            "video_id": [p.stem for p in clips],
            "description_0": [f"a short clip called {p.stem}" for p in clips],
        }
    ).to_csv(captions, index=False)
    out = tmp_path / "features"
    res = _run(
        "extract",
        *map(str, clips),
        "--tiers",
        "low,mid,high,text",
        "--captions",
        str(captions),
        "--weights",
        f"high={weights}",
        "--frames",
        "16",
        "--size",
        "128",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    store = FeatureStore(out)
    widths = {"low": 36, "mid": 1291, "high": 512, "text": 384}
    for tier, width in widths.items():
        table = store.table(tier)
        assert table is not None and sorted(table["video_id"]) == sorted(p.stem for p in clips), tier
        assert list(table.columns[:5]) == ["video_id", "path", "content_hash", "config_hash", "facts"]
        assert len(store.feature_names(tier)) == width, tier
        assert np.isfinite(table[store.feature_names(tier)].to_numpy()).all()
    assert store.feature_names("high")[0] == "action_000"
    assert "imagenet_top5" in store.table("mid")["facts"].iloc[0]


def test_a_small_run_decodes_each_video_once_a_large_sample_is_decoded_again(
    three_clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiermem.extraction import extract, workers

    decoded: list[tuple[str, int]] = []
    real_decode = workers.decode

    def counting_decode(path: str, **options):
        decoded.append((Path(path).stem, options["frames"]))
        return real_decode(path, **options)

    monkeypatch.setattr(workers, "decode", counting_decode)
    paths = sorted(three_clips.glob("*.mp4"))
    # the low tier's PCA is fitted on the extraction's own pass
    report = extract(paths, tiers=["low"], out=tmp_path / "once", frames=15, size=128)
    assert report.fitted == ["low"] and len(report.done) == 3
    assert sorted(decoded) == sorted((p.stem, 15) for p in paths)

    # a sample whose deferred HOG rows (5 of 8101 floats a video) would not fit in half the
    # frame memory: the fit decodes its own 14 frames a video
    decoded.clear()
    one_video = 15 * 128 * 128 * 3  # the run's frames of one video: a worker's least
    assert 3 * 5 * 8101 * 4 > one_video // 2
    report = extract(
        paths, tiers=["low"], out=tmp_path / "twice", frames=15, size=128, frame_memory=one_video
    )
    assert report.fitted == ["low"] and len(report.done) == 3
    assert sorted(decoded) == sorted([(p.stem, 14) for p in paths] + [(p.stem, 15) for p in paths])
    once = FeatureStore(tmp_path / "once").table("low")
    twice = FeatureStore(tmp_path / "twice").table("low")
    assert (once["video_id"] == twice["video_id"]).all()


def test_a_pca_fitted_on_the_pass_equals_one_fitted_apart(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    """Two workers, one video a task (so videos arrive out of order): the rows equal a PCA
    fitted on the same clips decoded apart, then each clip transformed, bit for bit."""
    from tiermem import Run
    from tiermem.extraction import extract
    from tiermem.extraction.fitting import fit_frames_per_clip
    from tiermem.tiers.low import LowTier
    from tiermem.video import decode

    report = extract(
        sample_clip_paths, tiers=["low"], out=tmp_path / "f", frames=15, size=128, run=Run(workers=2, batch=1)
    )
    assert report.fitted == ["low"] and sorted(report.done) == sorted(p.stem for p in sample_clip_paths)
    clips = [decode(p, frames=15, size=128) for p in sample_clip_paths]
    apart = LowTier().fit(clips, frames_per_clip=fit_frames_per_clip(len(clips), 9))
    table = FeatureStore(tmp_path / "f").table("low").set_index("video_id")
    for path, clip in zip(sample_clip_paths, clips):
        np.testing.assert_array_equal(
            table.loc[path.stem, apart.feature_names].to_numpy(np.float32), apart.transform(clip)
        )
    again = extract(sample_clip_paths, tiers=["low"], out=tmp_path / "f", frames=15, size=128)
    assert again.fitted == [] and len(again.skipped) == len(sample_clip_paths)

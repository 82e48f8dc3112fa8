"""The run context: settings checked once, the device resolved once, progress and notes heard
through callbacks by whoever runs the call (the library itself prints nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

import tiermem.run
from tiermem.errors import TiermemError
from tiermem.extraction import extract
from tiermem.run import Engine, Run, Step
from tiermem.store import FeatureStore


def test_bad_settings_are_refused_in_one_line() -> None:
    with pytest.raises(TiermemError, match="--device must be one of auto, cpu, cuda, got 'gpu'"):
        Run(device="gpu")
    with pytest.raises(
        TiermemError, match=r"workers, batch size and device batch must be >= 1 \(got 0, 8, 32\)"
    ):
        Run(workers=0)
    with pytest.raises(TiermemError, match="--engine must be one of local, ray"):
        Run(engine="spark")
    with pytest.raises(TiermemError, match="--device cuda on Ray needs --gpus-per-worker"):
        Run(engine="ray", device="cuda")
    assert Run(engine="ray").cluster == Engine("ray")


def test_the_device_is_resolved_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def resolve(device: str) -> str:
        asked.append(device)
        return "cpu"

    monkeypatch.setattr(tiermem.run, "resolve_device", resolve)
    run = Run(device="auto")
    assert run.network_device == "cpu" and run.network_device == "cpu"
    assert asked == ["auto"]
    # On Ray a worker sees a GPU only when it asks for one: auto follows the request.
    assert Run(engine=Engine("ray", gpus_per_worker=1)).network_device == "cuda"
    assert Run(engine=Engine("ray", gpus_per_worker=1), device="cpu").network_device == "cpu"
    assert Run(engine="ray").network_device == "cpu"
    assert asked == ["auto"]  # Ray's answer needs no local GPU


def test_a_step_knows_its_share() -> None:
    assert Step("extracting low", 3, 4).share == 0.75
    assert Step("timeline a.mp4", 7.5, 6.0, unit="s").share == 1.0
    assert Step("hashing files", 0, 0).share == 1.0


def test_extraction_reports_each_stage_and_notes_through_the_run(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    clips = sample_clip_paths[:3]
    store = FeatureStore(tmp_path)
    store.root.mkdir(parents=True, exist_ok=True)
    store.table_path("low").write_bytes(b"not parquet")  # set aside, with a warning note
    steps: list[Step] = []
    notes: list[tuple[str, bool]] = []
    run = Run(on_progress=steps.append, on_note=lambda line, warning: notes.append((line, warning)))
    report = extract(clips, tiers=["low"], out=tmp_path, frames=9, size=64, run=run)
    assert sorted(report.done) == sorted(p.stem for p in clips)

    by_stage: dict[str, list[Step]] = {}
    for step in steps:
        by_stage.setdefault(step.stage, []).append(step)
    assert list(by_stage) == ["hashing files", "fitting low on 3 videos", "extracting low"]
    for stage, seen in by_stage.items():
        done = [s.done for s in seen]
        assert done == sorted(done) and done[-1] == 3 and {s.total for s in seen} == {3}, (stage, done)
    assert len(notes) == 1 and notes[0][1] is True
    assert "not a readable feature table" in notes[0][0] and "moved to" in notes[0][0]


def test_without_callbacks_notes_go_to_the_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="tiermem"):
        Run().note("features: training split")
        Run().note("3 videos failed", warning=True)
    assert [(r.levelname, r.message) for r in caplog.records] == [
        ("INFO", "features: training split"),
        ("WARNING", "3 videos failed"),
    ]


def test_a_low_tier_run_looks_for_a_gpu_only_when_cuda_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiermem.tiers import get_tier

    monkeypatch.setattr(
        tiermem.run, "resolve_device", lambda device: "cpu" if device == "cpu" else "cuda"
    )  # a GPU here
    low, mid = get_tier("low"), get_tier("mid")
    assert low.uses_device and mid.uses_device and not low.runs_network
    assert Run().device_for([low]) == "cpu"  # auto: not worth loading torch to look
    assert Run(device="cuda").device_for([low]) == "cuda"
    assert Run().device_for([low, mid]) == "cuda"  # the network loads torch anyway: both go
    assert Run(device="cpu").device_for([low, mid]) == "cpu"


@pytest.mark.slow
def test_an_entered_run_keeps_its_workers_between_calls(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    """`with Run(workers=2) as run:` starts the worker processes once for every call in the
    block (they keep their tiers), and ends them with the block; a run not entered ends its
    workers with each call."""
    import os

    from processes import alive, descendants

    def ours() -> set[int]:
        return {p for p in descendants(os.getpid()) if alive(p)}

    clips = sample_clip_paths[1:5]
    settings = {"tiers": ["low"], "frames": 9, "size": 96}
    extract(clips[:3], out=tmp_path / "a", run=Run(workers=2), **settings)
    before = ours()  # what stays for the process's life (multiprocessing's forkserver), no worker
    extract(clips[1:], out=tmp_path / "a2", run=Run(workers=2), **settings)
    assert ours() == before  # not entered: each call's workers end with it
    with Run(workers=2) as run:
        first = extract(clips[:3], out=tmp_path / "b", run=run, **settings)
        kept = ours() - before
        assert kept  # the forkserver and the workers stay up between calls
        second = extract(clips[1:], out=tmp_path / "c", run=run, **settings)
        assert ours() - before == kept  # the same processes did the second call
    assert len(first.done) == 3 and len(second.done) == 3 and not first.failed
    assert not [p for p in kept if alive(p)]  # the block ended them
    ref = FeatureStore(tmp_path / "a").table("low").set_index("video_id").sort_index()
    got = FeatureStore(tmp_path / "b").table("low").set_index("video_id").sort_index()
    assert (ref.drop(columns=["path"]) == got.drop(columns=["path"])).all().all()  # warm workers, same rows

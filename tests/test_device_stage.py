"""The device stage: one owner of the device runs the network tiers on clips batched across
videos. Its features must equal the clip-by-clip path's (float32 round-off), its batches keep
their size and latency limits, a full queue holds back whoever feeds it, and a batch that fails
on the device fails only the videos that fail alone too.

The stage runs here on the CPU (`device_stage=True`): the same code a GPU run takes, with the
device string the only difference."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_runs import run as run_cli

from tiermem.errors import MissingWeightsError, TiermemError
from tiermem.extraction import ExtractReport, extract_videos
from tiermem.extraction.device_stage import DeviceStage, batched_features
from tiermem.run import Run
from tiermem.store import FeatureStore
from tiermem.tiers import get_tier
from tiermem.tiers.per_frame import FrameReads, FrameTier, Work
from tiermem.video import Clip, decode
from tiermem.video.clip import VideoMeta

#: Frames and size of the clips here (small: the point is the plumbing and the numbers' equality).
FRAMES, SIZE = 9, 128
#: Float32 round-off of a network's output between batch compositions and thread counts
#: (measured: mid 2.3e-6, prior 1.8e-7, high 0).
ROUND_OFF = 1e-5
TIERS = ["low", "mid", "high"]


def _table(out: Path, tier: str) -> pd.DataFrame:
    return FeatureStore(out).table(tier).set_index("video_id").sort_index()


@pytest.fixture(scope="module")
def random_high(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The high tier on one file of seeded random r2plus1d_18 weights (plumbing only; the
    Kinetics weights need a download), so that every run below uses the same network."""
    import torch
    from safetensors.torch import save_file
    from torchvision.models import get_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "r2plus1d_18-random.safetensors"
    save_file(get_model("r2plus1d_18", weights=None, num_classes=400).state_dict(), path)
    return {"high": {"weights": str(path)}}


@pytest.fixture(scope="module")
def reference(
    sample_clip_paths: list[Path],
    random_high: dict[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Every tier clip by clip in this process, no stage."""
    out = tmp_path_factory.mktemp("no_stage")
    report = _every_tier(sample_clip_paths, out, random_high, stage=False)
    assert not report.failed and report.device_batches == []
    return out


def _every_tier(
    paths: list[Path], out: Path, config: dict[str, dict[str, str]], stage: bool
) -> ExtractReport:
    """`TIERS` of `paths` into `out` in this process, with the device stage or without."""
    return extract_videos(
        paths,
        tiers=TIERS,
        out=out,
        frames=FRAMES,
        size=SIZE,
        tier_config=config,
        run=Run(device="cpu", device_stage=stage),
    )


def _same_features(got: Path, want: Path, tiers: list[str], atol: float = ROUND_OFF) -> None:
    for tier in tiers:
        a, b = _table(got, tier), _table(want, tier)
        assert list(a.index) == list(b.index)
        numeric = [c for c in b.columns if b[c].dtype.kind == "f"]
        np.testing.assert_allclose(a[numeric].to_numpy(), b[numeric].to_numpy(), atol=atol, rtol=0)
        assert (a["config_hash"] == b["config_hash"]).all()  # the stage does not change the cache key


def test_one_local_worker_stages_its_networks_by_default_and_several_do_not() -> None:
    assert Run(workers=1).stages_networks("cpu") and Run(workers=1).stages_networks("cuda")
    assert not Run(workers=2).stages_networks("cpu") and Run(workers=2).stages_networks("cuda")
    assert not Run(workers=1, device_stage=False).stages_networks("cuda")
    assert DeviceStage({"mid": get_tier("mid")}).mix is False  # on the CPU each clip runs alone


def test_staged_features_equal_clip_by_clip_ones_in_this_process(
    reference: Path, sample_clip_paths: list[Path], random_high: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    report = _every_tier(sample_clip_paths, tmp_path, random_high, stage=True)
    assert not report.failed
    assert len(report.device_batches) == len(sample_clip_paths)  # every video went through the stage
    _same_features(tmp_path, reference, TIERS, atol=0.0)  # on the CPU each clip runs alone: bit for bit


def test_workers_send_their_clips_to_the_stage_which_batches_them_across_videos(
    reference: Path, sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    """Two worker processes decode and run the low tier; the networks run here, on clips of
    several videos at once."""
    result = run_cli(
        "extract",
        *sample_clip_paths,
        "--tiers",
        "low,mid",
        "--out",
        tmp_path,
        "--frames",
        FRAMES,
        "--size",
        SIZE,
        "--workers",
        2,
        "--device",
        "cpu",
        "--device-stage",
        "--device-batch",
        4,
    )
    assert result.exit_code == 0, result.output
    _same_features(tmp_path, reference, ["low", "mid"])
    report = extract_videos(
        sample_clip_paths,
        tiers=["mid"],
        out=tmp_path / "again",
        frames=FRAMES,
        size=SIZE,
        run=Run(workers=2, device="cpu", device_stage=True, device_batch=4),
    )
    assert len(report.device_batches) == len(sample_clip_paths)
    assert 2 <= max(report.device_batches) <= 4  # batched across videos, within the size limit


@pytest.fixture(scope="module")
def clips(sample_clip_paths: list[Path]) -> list[Clip]:
    return [decode(p, frames=FRAMES, size=SIZE) for p in sample_clip_paths[:5]]


def test_batches_keep_their_size_limit_and_a_lone_clip_waits_only_the_latency_limit(
    clips: list[Clip],
) -> None:
    mid = get_tier("mid")
    with DeviceStage({"mid": mid}, max_clips=2, max_wait=0.3, mix=True) as stage:  # mixed, as on a GPU
        futures = [stage.submit(c, ["mid"]) for c in clips]
        results = [f.result(timeout=120) for f in futures]
    assert stage.batch_sizes == [2, 2, 1]
    assert [r.batch for r in results] == [2, 2, 2, 2, 1]
    want, _ = batched_features(mid, clips[:1])
    np.testing.assert_allclose(results[0].values["mid"], want[0], atol=ROUND_OFF, rtol=0)


class _Probe(FrameTier):
    """A stand-in for a network tier (plumbing only): the mean grey level of each read frame.

    `gate`: per-frame work waits for it (a slow device). Frames of more than one clip in one
    call fail as a device out of memory would, and a clip whose path ends in "bad" fails alone.
    """

    name = "probe"
    runs_network = True

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.gate = gate

    @property
    def feature_names(self) -> list[str]:
        return ["grey"]

    def reads(self, num_frames: int) -> FrameReads:
        return FrameReads(frames={"grey": np.arange(num_frames)})

    def per_frame(self, name: str, frames: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(30)
        if len(frames) > FRAMES:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
        return frames.reshape(len(frames), -1).mean(axis=1)

    def aggregate(self, work: Work, meta: VideoMeta, times: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        if meta.path.endswith("bad"):
            raise TiermemError(f"{meta.path}: frames this tier cannot read")
        return np.array([work["grey"].mean()], np.float32), {}


def _renamed(clip: Clip, path: str) -> Clip:
    meta = VideoMeta(**{**clip.meta.to_dict(), "path": path})
    return Clip(clip.frames, clip.times, meta)


def test_a_full_stage_holds_back_whoever_feeds_it(clips: list[Clip]) -> None:
    gate = threading.Event()
    with DeviceStage({"probe": _Probe(gate)}, max_clips=1, max_wait=0.0, capacity=1) as stage:
        first = stage.submit(clips[0], ["probe"])  # taken by the stage, which waits on the device
        time.sleep(0.2)
        second = stage.submit(clips[1], ["probe"])  # fills the queue
        fed: list[Any] = []
        feeder = threading.Thread(target=lambda: fed.append(stage.submit(clips[2], ["probe"])))
        feeder.start()
        feeder.join(0.5)
        assert feeder.is_alive() and not fed  # blocked while the device is busy and the queue full
        gate.set()
        feeder.join(30)
        values = [f.result(timeout=30).values["probe"][0] for f in (first, second, fed[0])]
    want = [c.frames.reshape(FRAMES, -1).mean(axis=1).mean() for c in clips[:3]]
    np.testing.assert_allclose(values, want, rtol=1e-6)


def test_a_failing_batch_fails_only_the_videos_that_fail_alone(clips: list[Clip]) -> None:
    batch = [clips[0], _renamed(clips[1], "/videos/bad"), clips[2]]
    with DeviceStage({"probe": _Probe()}, max_clips=3, max_wait=1.0, mix=True) as stage:
        results = [f.result(timeout=30) for f in [stage.submit(c, ["probe"]) for c in batch]]
    assert stage.batch_sizes == [3]  # one batch, out of memory as a whole, then clip by clip
    assert [bool(r.errors) for r in results] == [False, True, False]
    assert results[1].errors == ["tier probe: /videos/bad: frames this tier cannot read"]
    assert "probe" in results[0].values and "probe" in results[2].values


def test_device_errors_keep_their_first_line(clips: list[Clip]) -> None:
    class Broken(_Probe):
        def per_frame(self, name: str, frames: np.ndarray) -> np.ndarray:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors ...")

    with DeviceStage({"probe": Broken()}, max_clips=1) as stage:
        result = stage.submit(clips[0], ["probe"]).result(timeout=30)
    assert result.errors == ["tier probe: CUDA error: an illegal memory access was encountered"]


def test_weights_that_cannot_load_stop_the_run_once(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-weights.pt"
    with pytest.raises(MissingWeightsError):
        extract_videos(
            sample_clip_paths[:3],
            tiers=["low", "mid"],
            out=tmp_path / "features",
            frames=FRAMES,
            size=SIZE,
            tier_config={"mid": {"weights": str(missing)}},
            run=Run(device="cpu", device_stage=True),
        )


def test_the_stage_refuses_tiers_it_does_not_hold_and_bad_limits(clips: list[Clip]) -> None:
    with pytest.raises(TiermemError, match="max_clips"):
        DeviceStage({}, max_clips=0)
    with DeviceStage({"probe": _Probe()}) as stage:
        with pytest.raises(TiermemError, match="no tier mid"):
            stage.submit(clips[0], ["mid"])
    with pytest.raises(TiermemError, match="device batch"):
        Run(device_batch=0)


def test_the_stage_holds_at_most_half_the_decoded_frame_budget() -> None:
    from tiermem.extraction.frame_budget import stage_limits

    budget = 1 << 30
    batch, waiting = stage_limits(32, 45, 256, budget)
    assert (batch + waiting) * 45 * 256 * 256 * 3 <= budget // 2 and batch >= 16
    assert stage_limits(32, 9, 128, budget) == (32, 64)  # small clips: the batch asked for, two waiting
    assert stage_limits(32, 1500, 256, budget) == (1, 1)  # 295 MB clips: one running, one waiting
    assert stage_limits(8, None, 256, budget) == (8, 16)  # frames follow the frame rate: as asked

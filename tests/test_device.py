"""`--device auto|cpu|cuda`: the CPU path here, the CUDA path where torch sees a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.device import resolve_device
from tiermem.errors import TiermemError
from tiermem.extraction import extract
from tiermem.model.train import train_mlp
from tiermem.run import Run
from tiermem.store import FeatureStore
from tiermem.tiers import get_tier
from tiermem.tiers.base import Tier
from tiermem.zero_shot import ZeroShotModel

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU visible to torch on this machine")


def test_auto_is_the_cpu_without_a_gpu_and_cuda_is_refused() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if CUDA else "cpu")
    with pytest.raises(TiermemError, match="--device must be one of auto, cpu, cuda"):
        resolve_device("tpu")
    with pytest.raises(TiermemError, match="--device must be one of"):
        Run(device="gpu")
    if not CUDA:
        with pytest.raises(TiermemError, match="torch sees no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without a GPU")
def test_cli_refuses_cuda_without_a_gpu(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["extract", str(sample_clip_paths[0]), "--tiers", "mid", "--out", str(tmp_path), "--device", "cuda"],
    )
    assert result.exit_code == 1
    assert "--device cuda: torch sees no CUDA GPU" in result.output
    assert not (tmp_path / "mid.parquet").exists()


def test_cpu_keeps_the_cache_keys(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    """Features extracted before devices existed stay valid: the CPU adds nothing to the key.
    The first run names the CPU too: on a machine with a GPU, `auto` would take CUDA."""
    tier = get_tier("mid")
    assert tier.on("cpu").config_hash() == get_tier("mid").config_hash()
    first = extract(sample_clip_paths[:2], tiers=["low", "mid"], out=tmp_path, run=Run(device="cpu"))
    again = extract(sample_clip_paths[:2], tiers=["low", "mid"], out=tmp_path, run=Run(device="cpu"))
    assert len(first.done) == 2 and again.done == [] and len(again.skipped) == 2


def test_device_reaches_clips_and_timelines_of_fitted_and_zero_shot_models(
    fitted, sample_clip_paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every network tier is placed on the device asked for, whether a video is scored as one
    clip or window by window; where there is no GPU, CUDA is refused on both paths."""
    placed: list[tuple[str, str]] = []
    real_on = Tier.on

    def spy(self: Tier, device: str) -> Tier:
        placed.append((self.name, device))
        return real_on(self, device)

    monkeypatch.setattr(Tier, "on", spy)
    pipe = fitted[0]
    clip = next(p for p in sample_clip_paths if p.stem == "bikes_000")
    for timeline in (False, True):
        placed.clear()
        pred = pipe.predict(clip, timeline=timeline, run=Run(device="cpu"))
        assert len(pred.table) == 1
        assert ("mid", "cpu") in placed and all(d == "cpu" for _, d in placed), (timeline, placed)
    placed.clear()
    ZeroShotModel().predict(clip, timeline=True, run=Run(device="cpu"))
    assert placed and set(placed) == {("prior", "cpu")}
    if not CUDA:
        for timeline in (False, True):
            with pytest.raises(TiermemError, match="--device cuda"):
                pipe.predict(clip, timeline=timeline, run=Run(device="cuda"))


def test_low_tier_alone_never_imports_torch(tmp_path: Path, sample_clip_paths: list[Path]) -> None:
    """Only network tiers ask for a device: asking torch would load it (~650 MiB) for nothing."""
    import subprocess
    import sys

    code = (
        "import sys; from tiermem.extraction import extract\n"
        f"extract([{str(sample_clip_paths[0])!r}], tiers=['low'], out={str(tmp_path)!r})\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


@needs_cuda
def test_cuda_features_stay_near_cpu_features_under_their_own_key(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    cpu = extract(sample_clip_paths[:3], tiers=["mid"], out=tmp_path / "cpu", run=Run(device="cpu"))
    gpu = extract(sample_clip_paths[:3], tiers=["mid"], out=tmp_path / "gpu", run=Run(device="cuda"))
    assert not cpu.failed and not gpu.failed
    a = FeatureStore(tmp_path / "cpu").table("mid").set_index("video_id").sort_index()
    b = FeatureStore(tmp_path / "gpu").table("mid").set_index("video_id").sort_index()
    assert (a["config_hash"] != b["config_hash"]).all()  # bf16 autocast: never mixed with CPU rows
    emb = [c for c in a.columns if c.startswith("semantic_")]
    cos = (a[emb].to_numpy() * b[emb].to_numpy()).sum(1) / (
        np.linalg.norm(a[emb].to_numpy(), axis=1) * np.linalg.norm(b[emb].to_numpy(), axis=1)
    )
    assert cos.min() > 0.99


@needs_cuda
def test_head_trains_on_cuda_and_comes_back_on_the_cpu() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 16)).astype(np.float32)
    y = 1 / (1 + np.exp(-X[:, 0]))
    net, log, _, _ = train_mlp(X, y, hidden=(32,), device="cuda")
    assert next(net.parameters()).device.type == "cpu" and np.isfinite(log[-1].train_loss)

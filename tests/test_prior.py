"""Prior tier: ResMem image memorability (optional extra `tiermem[resmem]`)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from skimage import data
from sklearn.datasets import load_sample_images
from test_mid import clip_of, frame

from tiermem.errors import MissingWeightsError
from tiermem.tiers import get_tier
from tiermem.tiers.prior import load_resmem

needs_resmem = pytest.mark.skipif(
    importlib.util.find_spec("resmem") is None,
    reason="ResMem not installed (optional extra: pip install 'tiermem[resmem]')",
)


def test_missing_extra_gives_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "resmem", None)  # what an environment without it sees
    with pytest.raises(MissingWeightsError, match=r"pip install 'tiermem\[resmem\]'"):
        load_resmem()
    tier = get_tier("prior")  # the tier itself imports and builds without resmem
    assert tier.feature_names == ["prior_mean", "prior_max", "prior_std"]


@pytest.fixture(scope="module")
def prior():
    tier = get_tier("prior", frames_k=5)
    _ = tier.model
    return tier


@needs_resmem
def test_close_up_objects_score_above_a_landscape(prior) -> None:
    samples = dict(zip(["china", "flower"], load_sample_images().images))
    photos = np.stack([frame(data.coffee()), frame(samples["flower"]), frame(samples["china"])])
    coffee, flower, landscape = prior.score_frames(photos)
    assert min(coffee, flower) > landscape + 0.05, (coffee, flower, landscape)
    assert all(0.0 < s < 1.0 for s in (coffee, flower, landscape))


@needs_resmem
def test_prior_tier_summarises_frame_scores(prior) -> None:
    two = get_tier("prior", frames_k=2)
    two._model = prior.model  # same network; spares loading 500 MB twice
    still = clip_of([data.coffee()] * 10, "still")
    mixed = clip_of([data.coffee()] * 5 + [data.rocket()] * 5, "mixed")  # samples frames 2 and 7
    result = two.transform_batch([still, mixed])
    assert result.values.shape == (2, 3) and np.isfinite(result.values).all()
    mean, top, std = result.values[0]
    assert std == pytest.approx(0.0, abs=1e-5) and mean == pytest.approx(top, abs=1e-5)
    mean, top, std = result.values[1]
    assert std > 0.01 and top > mean
    per_frame = result.facts[1]["prior_per_frame"]
    assert len(per_frame) == 2 and max(per_frame) == pytest.approx(float(top), abs=1e-3)


@needs_resmem
def test_bf16_precision_stays_close_to_float32(prior) -> None:
    photos = np.stack([frame(data.coffee()), frame(data.astronaut())])
    fp32 = prior.score_frames(photos)
    bf16 = get_tier("prior", precision="bf16").score_frames(photos)
    np.testing.assert_allclose(bf16, fp32, atol=0.01)
    assert get_tier("prior", precision="bf16").config_hash() != get_tier("prior").config_hash()


@needs_resmem
def test_the_resnet_branch_runs_channels_last_from_a_cached_copy_with_the_same_scores(
    tmp_path, monkeypatch
) -> None:
    import torch

    torch.manual_seed(0)
    x = torch.rand(2, 3, 227, 227)

    def scores_and_layout(cache) -> tuple[np.ndarray, bool]:
        monkeypatch.setenv("TIERMEM_CACHE", str(cache))
        model = load_resmem()
        with torch.inference_mode():
            y = model(x).numpy().ravel()
        return y, model.features.conv1.weight.is_contiguous(memory_format=torch.channels_last)

    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    plain, plain_nhwc = scores_and_layout(blocked / "cache")  # the copy cannot be written: as loaded
    assert not plain_nhwc
    fast, fast_nhwc = scores_and_layout(tmp_path / "cache")  # written on first use, then mapped
    [copy] = (tmp_path / "cache").glob("resmem-convolutions-nhwc-*.safetensors")
    assert fast_nhwc and copy.stat().st_size > 200e6
    np.testing.assert_allclose(fast, plain, atol=1e-6, rtol=0)
    copy.write_bytes(copy.read_bytes()[:1000])  # a damaged copy: the weights as loaded, same scores
    again, again_nhwc = scores_and_layout(tmp_path / "cache")
    assert not again_nhwc
    np.testing.assert_allclose(again, plain, atol=1e-6, rtol=0)

"""High tier: never random weights by accident, local weights files, shapes and determinism.

Random-init networks here only check plumbing (shapes, batching, loading); no prediction is
read from them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from test_mid import clip_of

from tiermem.errors import MissingWeightsError, TiermemError
from tiermem.tiers import get_tier
from tiermem.tiers.high import HighTier


@pytest.fixture(scope="module")
def clips():
    return [
        clip_of([data.astronaut(), data.coffee(), data.chelsea(), data.rocket()] * 3, "a"),
        clip_of([data.rocket(), data.camera(), data.coins(), data.astronaut()] * 3, "b"),
    ]


@pytest.fixture(scope="module")
def random_tier() -> HighTier:
    torch.manual_seed(0)
    tier = get_tier("high", weights=None, frames=4)
    _ = tier.backbone
    return tier


def test_missing_weights_stop_with_the_expected_file_named(tmp_path, monkeypatch, clips) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TIERMEM_OFFLINE", "1")
    tier = get_tier("high")
    with pytest.raises(MissingWeightsError) as err:
        tier.transform_batch(clips)
    msg = str(err.value)
    assert str(tmp_path / "hub" / "checkpoints" / "r2plus1d_18-91a641e6.pth") in msg
    assert "--weights TIER=PATH" in msg and "network access" in msg
    assert "R2Plus1D_18_Weights.KINETICS400_V1" in msg


def test_random_weights_shapes_determinism_and_batching(random_tier, clips) -> None:
    first = random_tier.transform_batch(clips)
    assert first.values.shape == (2, 512) == (2, len(random_tier.feature_names))
    assert first.values.dtype == np.float32 and np.isfinite(first.values).all()
    assert random_tier.feature_names[0] == "action_000"
    again = random_tier.transform_batch(clips)
    assert np.array_equal(first.values, again.values)
    alone = random_tier.transform(clips[1])
    np.testing.assert_allclose(alone, first.values[1], rtol=1e-4, atol=1e-5)
    assert not np.allclose(first.values[0], first.values[1])  # different clips, different features
    assert first.facts[0] == {"weights": "random init (not pretrained): no action labels"}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file_is_loaded(random_tier, clips, tmp_path, suffix) -> None:
    state = random_tier.backbone.model.net.state_dict()
    path = tmp_path / f"r2plus1d_18{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    tier = get_tier("high", weights=str(path), frames=4)
    got = tier.transform_batch(clips)
    np.testing.assert_allclose(got.values, random_tier.transform_batch(clips).values, rtol=1e-5, atol=1e-6)
    assert tier.backbone.weights_file == str(path)
    labels = got.facts[0]["kinetics_top5"]  # a user-supplied file counts as trained weights
    assert len(labels) == 5 and all(isinstance(d["label"], str) for d in labels)


def test_weights_for_another_network_are_refused(random_tier, tmp_path, clips) -> None:
    path = tmp_path / "r2plus1d_18.pth"
    torch.save(random_tier.backbone.model.net.state_dict(), path)
    with pytest.raises(MissingWeightsError, match="does not match"):
        get_tier("high", network="r3d_18", weights=str(path), frames=4).transform_batch(clips)


def test_unknown_network_is_named() -> None:
    with pytest.raises(TiermemError, match="unknown network 'c3d'"):
        _ = get_tier("high", network="c3d").feature_names


def test_clip_length_defaults_to_the_weights_documented_one() -> None:
    assert get_tier("high").clip_frames == 16
    assert get_tier("high", network="swin3d_t").clip_frames == 32
    assert get_tier("high", frames=8).clip_frames == 8


def test_high_on_a_real_decoded_clip(random_tier, sample_clip_paths) -> None:
    from tiermem.video import decode

    values = random_tier.transform(decode(sample_clip_paths[0]))
    assert values.shape == (512,) and np.isfinite(values).all()


def test_cache_key_follows_the_weights_file_content(random_tier, tmp_path) -> None:
    path = tmp_path / "w.pth"
    state = random_tier.backbone.model.net.state_dict()
    torch.save(state, path)
    before = get_tier("high", weights=str(path)).config_hash()
    assert get_tier("high", weights=str(path)).config_hash() == before
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, path)
    assert get_tier("high", weights=str(path)).config_hash() != before
    assert get_tier("high", weights=None).config_hash() != get_tier("high").config_hash()

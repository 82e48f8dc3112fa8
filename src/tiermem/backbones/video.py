"""Kinetics-400 video networks from torchvision for the high tier.

bb = video_backbone("r2plus1d_18")                     # hub cache, or download once
bb = video_backbone("r2plus1d_18", weights="r2plus1d_18.pth")

>>> from tiermem.backbones import video_backbone
>>> bb = video_backbone("r2plus1d_18", weights=None)   # random initialisation: shapes only
>>> pooled, logits = bb.model(torch.zeros(1, 3, 16, 112, 112))   # (N, 3, T, H, W), normalised
>>> tuple(pooled.shape), tuple(logits.shape)
((1, 512), (1, 400))
"""

from __future__ import annotations

from tiermem.backbones.image import WeightsArg, _load_strict, torchvision_licence, torchvision_weights_file
from tiermem.backbones.network import DEFAULT, Backbone, PooledClassifier, last_linear
from tiermem.backbones.weights import WeightsInfo, load_state_file
from tiermem.errors import TiermemError

#: Clip length each network's Kinetics-400 weights were evaluated with (the weight enum's
#: documented ``clip_len``); frames are sampled evenly over the decoded clip to this count.
VIDEO_CLIP_FRAMES: dict[str, int] = {
    "r2plus1d_18": 16,
    "r3d_18": 16,
    "mc3_18": 16,
    "s3d": 128,
    "mvit_v2_s": 16,  # fixed: its positional embeddings are sized for 16 frames
    "swin3d_t": 32,
}


def video_backbone(name: str = "r2plus1d_18", weights: WeightsArg = DEFAULT) -> Backbone:
    """A torchvision Kinetics-400 network: pooled clip features plus the 400 action logits.

    ``weights``: ``"default"`` (the enum's DEFAULT weights from torch hub's cache, downloaded
    once when online), a local state dict path, or None (random init, for tests only).
    """
    from torchvision.models import get_model, get_model_weights

    if name not in VIDEO_CLIP_FRAMES:
        raise TiermemError(f"unknown video network {name!r}; available: {', '.join(VIDEO_CLIP_FRAMES)}")
    enum = get_model_weights(name).DEFAULT
    transforms = enum.transforms()
    categories = tuple(enum.meta["categories"])
    net = get_model(name, weights=None, num_classes=len(categories))
    path = torchvision_weights_file(name, weights, what=f"the high tier's {name} ({enum})")
    if path is not None:
        _load_strict(net, load_state_file(path), path)
    info = WeightsInfo(
        name=name,
        source=f"torchvision {enum} ({enum.url})",
        licence=torchvision_licence(),
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        size=int(transforms.crop_size[0]),
        resize=int(transforms.resize_size[0]),
        frames=VIDEO_CLIP_FRAMES[name],
        categories=categories,
    )
    return Backbone(PooledClassifier(net.eval(), last_linear(net)), info, path is not None, str(path or ""))

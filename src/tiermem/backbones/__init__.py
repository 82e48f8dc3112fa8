"""Where pretrained weights come from: packaged files, timm and torchvision names, local paths.

One function per source, each returning a `Backbone` (network + `WeightsInfo`: source,
licence, preprocessing, class names) or raising one `MissingWeightsError` that names the
missing file and how to provide it. See `tiermem.backbones.weights` for the download policy.
"""

from tiermem.backbones.image import (
    efficientnet_lite0,
    efficientnet_lite0_file,
    get_backbone,
    imagenet_categories,
    list_backbones,
    register_backbone,
    timm_backbone,
    torchvision_backbone,
)
from tiermem.backbones.network import DEFAULT, Backbone, PooledClassifier
from tiermem.backbones.video import VIDEO_CLIP_FRAMES, video_backbone
from tiermem.backbones.weights import WeightsInfo, downloads_allowed, load_state_file

__all__ = [
    "DEFAULT",
    "VIDEO_CLIP_FRAMES",
    "Backbone",
    "PooledClassifier",
    "WeightsInfo",
    "downloads_allowed",
    "efficientnet_lite0",
    "efficientnet_lite0_file",
    "get_backbone",
    "list_backbones",
    "register_backbone",
    "imagenet_categories",
    "load_state_file",
    "timm_backbone",
    "torchvision_backbone",
    "video_backbone",
]

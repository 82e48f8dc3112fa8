"""High-level tier: actions and events from a Kinetics-400 video network (torchvision).

    high = get_tier("high")                               # r2plus1d_18, 16 frames, 512-d
    high = get_tier("high", network="swin3d_t")            # 32 frames, 768-d
    high = get_tier("high", weights="r2plus1d_18.pth")     # a local state dict

    >>> from tiermem.tiers import get_tier
    >>> high = get_tier("high", weights=None)              # random weights: shapes only, never scores
    >>> high.transform_batch(clips).values.shape
    (2, 512)

Each network sees the clip as its Kinetics-400 weights expect: ``frames`` evenly spaced frames
(default: the weight enum's documented clip length, see `VIDEO_CLIP_FRAMES`), shorter side
resized to the enum's resize size, centre-cropped, normalised with the enum's mean/std. The
pooled clip embedding is the feature vector (``action_000`` ...); the top-5 Kinetics classes go
into the facts. Weights come from torch hub's cache (downloaded once when online) or a path;
when neither exists, `MissingWeightsError` says which file and how to provide it. Random
weights only ever come from an explicit ``weights=None`` (tests of shapes and determinism).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tiermem.backbones import DEFAULT, VIDEO_CLIP_FRAMES, Backbone, video_backbone
from tiermem.backbones.cache import shared_network
from tiermem.device import network_inference
from tiermem.errors import TiermemError
from tiermem.tiers import register_tier
from tiermem.tiers.base import PretrainedTier, TierResult
from tiermem.tiers.frames import normalise, resize_centre_crop, sample_frames, to_tensor
from tiermem.video.clip import Clip

TOP_K = 5  # Kinetics classes kept in the facts ("kinetics_top5")


@register_tier
class HighTier(PretrainedTier):
    """Pooled Kinetics-400 clip embedding of a torchvision video network."""

    name = "high"

    def __init__(
        self,
        network: str = "r2plus1d_18",
        weights: str | None = DEFAULT,
        frames: int | None = None,
    ) -> None:
        super().__init__(network=network, weights=None if weights is None else str(weights), frames=frames)
        self._backbone: Backbone | None = None

    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            if self.config["network"] not in VIDEO_CLIP_FRAMES:
                raise TiermemError(
                    f"high tier: unknown network {self.config['network']!r}; "
                    f"available: {', '.join(VIDEO_CLIP_FRAMES)}"
                )
            name, weights = self.config["network"], self.config["weights"]
            load = lambda: video_backbone(name, weights)  # noqa: E731
            # Random-init networks (weights=None) stay per instance: each is its own draw.
            self._backbone = load() if weights is None else shared_network("video", name, weights, load)
        return self._backbone

    @property
    def clip_frames(self) -> int:
        """Frames per clip the network sees: the config's, else the weights' documented length."""
        frames = self.config["frames"]
        return int(frames) if frames else VIDEO_CLIP_FRAMES[self.config["network"]]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_backbone": None}

    @property
    def feature_names(self) -> list[str]:
        dim = self.backbone.dim
        return [f"action_{i:0{max(3, len(str(dim - 1)))}d}" for i in range(dim)]

    def transform(self, clip: Clip) -> np.ndarray:
        return self.transform_batch([clip]).values[0]

    def transform_batch(self, clips: Sequence[Clip]) -> TierResult:
        """Each clip through the network alone, as a (1, 3, T, H, W) tensor.

        One clip per pass, not a batch of several: a 3-D convolution's output for one clip
        changed in the last bits with the clips batched beside it (r2plus1d_18 on the CPU, up
        to 2e-7 relative), and a video's features must not depend on its neighbours in a run.
        """
        bb = self.backbone
        if not clips:
            return TierResult(np.zeros((0, bb.dim), np.float32), [])
        t = self.clip_frames
        pooled_all, probs_all = [], []
        bb.model.to(self.device)
        with network_inference(self.device):
            for clip in clips:
                frames = sample_frames([clip], t)[0]  # (T, H, W, 3)
                x = to_tensor(frames).to(self.device, non_blocking=True)  # (T, 3, H, W)
                x = normalise(resize_centre_crop(x, bb.info.resize, bb.info.size), bb.info.mean, bb.info.std)
                x = x.reshape(1, t, 3, bb.info.size, bb.info.size).permute(0, 2, 1, 3, 4).contiguous()
                pooled, logits = bb.model(x)
                pooled_all.append(pooled.float().cpu().numpy())
                probs_all.append(logits.float().softmax(-1).cpu().numpy())
        values = np.concatenate(pooled_all).astype(np.float32)
        probs = np.concatenate(probs_all)
        if not np.all(np.isfinite(values)):
            raise TiermemError("high tier produced non-finite features")
        return TierResult(values=values, facts=[self._facts(p) for p in probs])

    def _facts(self, probs: np.ndarray) -> dict[str, Any]:
        bb = self.backbone
        if not bb.pretrained:
            return {"weights": "random init (not pretrained): no action labels"}
        top = np.argsort(probs)[::-1][:TOP_K]
        return {
            "kinetics_top5": [{"label": bb.info.categories[j], "p": round(float(probs[j]), 4)} for j in top]
        }

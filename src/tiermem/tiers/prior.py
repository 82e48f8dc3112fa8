"""Memorability-prior tier: ResMem image memorability of sampled frames (optional extra).

    pip install 'tiermem[resmem]'

    >>> from tiermem.tiers import get_tier
    >>> prior = get_tier("prior", frames_k=5)
    >>> prior.transform_batch(clips).values.shape      # (N, 3): prior_mean, prior_max, prior_std
    (2, 3)

ResMem (Needell & Bainbridge, 2022; PyPI ``resmem``) predicts how memorable a single image is;
it was trained on LaMem and MemCat. Its weights (about 500 MB) ship inside the ``resmem``
wheel, so it runs offline. It is under the *ResMem Non-commercial License* (University of
Chicago): non-commercial use only, which is why it is an optional extra and not a dependency.
Frames are prepared exactly as ResMem's own transformer does: resize to 256x256, centre crop
227, scale to [0, 1] (no mean/std normalisation).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tiermem.backbones.cache import shared_network
from tiermem.device import network_inference
from tiermem.errors import MissingWeightsError, TiermemError
from tiermem.tiers import register_tier
from tiermem.tiers.frames import evenly_spaced, resize, to_tensor
from tiermem.tiers.per_frame import FrameReads, FrameTier, Work
from tiermem.video.clip import VideoMeta

INSTALL_HINT = (
    "the prior tier needs the optional ResMem model: pip install 'tiermem[resmem]' "
    "(ResMem is under a non-commercial licence)"
)
FEATURE_NAMES = ["prior_mean", "prior_max", "prior_std"]


def load_resmem() -> torch.nn.Module:
    """ResMem with its packaged weights, in eval mode; `MissingWeightsError` when not installed."""
    try:
        import resmem
    except ModuleNotFoundError as exc:
        if exc.name != "resmem":
            raise
        raise MissingWeightsError(INSTALL_HINT) from None
    from torch.utils.serialization import config as serialization

    with warnings.catch_warnings():
        # ResMem builds its ResNet-152 branch through torchvision's deprecated `pretrained=`
        # argument (with False: no download); its weights then load from the wheel's model.pt.
        warnings.simplefilter("ignore", UserWarning)
        # Memory: the network is built without storage (meta device; the load ResMem does itself
        # then copies nothing and reads the file mapped), and the weights are mapped from the
        # file and used in place. Building then loading held the 530 MB of weights twice.
        mapped = serialization.load.mmap
        serialization.load.mmap = True
        try:
            with torch.device("meta"):
                model = resmem.ResMem(pretrained=True)
            state = torch.load(resmem.path, map_location="cpu", mmap=True, weights_only=True)
            state.update(channels_last_convolutions(state, Path(resmem.path)))
            model.load_state_dict(state, assign=True)
        except (OSError, RuntimeError, TypeError) as exc:
            raise MissingWeightsError(
                f"ResMem weights could not be loaded from {resmem.path}: {exc}"
            ) from exc
        finally:
            serialization.load.mmap = mapped
    return model.eval()


def cache_dir() -> Path:
    """Where tiermem keeps files it derives from installed weights: $TIERMEM_CACHE, else
    $XDG_CACHE_HOME/tiermem, else ~/.cache/tiermem."""
    if os.environ.get("TIERMEM_CACHE"):
        return Path(os.environ["TIERMEM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tiermem"


def channels_last_convolutions(state: dict[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """ResMem's ResNet-152 convolution weights from `state` in channels-last layout, mapped from
    a copy kept in `cache_dir()` (written on first use); {} where that copy cannot be had.

    The branch runs 16% faster so (157 instead of 187 ms a frame here, batches of 16, 2
    threads; scores equal to 1.2e-7). Converting the mapped weights in memory instead would add
    their 232 MB to every process's memory (zero-shot `predict` peaked at 1637 instead of 1415
    MiB); mapped from a file, they cost what the originals did and are shared between workers.
    The AlexNet branch keeps its layout: ResMem's forward flattens it with `.view`.
    """
    keys = sorted(k for k, v in state.items() if k.startswith("features.") and v.ndim == 4)
    stat = source.stat()
    path = cache_dir() / f"resmem-convolutions-nhwc-{stat.st_size}-{stat.st_mtime_ns}.safetensors"
    try:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            try:
                save_file({k: state[k].permute(0, 2, 3, 1).contiguous() for k in keys}, partial)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
        stored = load_file(path)
    except (OSError, SafetensorError):
        return {}
    converted = {k: stored[k].permute(0, 3, 1, 2) for k in keys if k in stored}
    if len(converted) != len(keys) or any(converted[k].shape != state[k].shape for k in keys):
        return {}
    return converted


@register_tier
class PriorTier(FrameTier):
    """Mean, max and std of ResMem memorability over `frames_k` evenly spaced frames.

    `precision="bf16"` runs the network under bfloat16 autocast: 1.8x faster on CPUs with
    AVX512-BF16 (500 vs 880 ms for 5 frames here), scores within ~2e-3 of float32. The
    default stays float32 so features do not depend on the processor.
    """

    runs_network = True

    name = "prior"

    def __init__(self, frames_k: int = 5, batch_size: int = 16, precision: str = "fp32") -> None:
        if precision not in ("fp32", "bf16"):
            raise TiermemError(f"prior tier: precision must be fp32 or bf16, got {precision!r}")
        super().__init__(frames_k=frames_k, batch_size=batch_size, precision=precision)
        self._model: torch.nn.Module | None = None

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = shared_network("resmem", "resmem", "default", load_resmem)
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    @property
    def feature_names(self) -> list[str]:
        return list(FEATURE_NAMES)

    def score_frames(self, frames: np.ndarray) -> np.ndarray:
        """ResMem memorability in [0, 1] for (M, H, W, 3) uint8 RGB images."""
        bs = max(1, int(self.config["batch_size"]))
        out = []
        bf16 = self.config["precision"] == "bf16"
        self.model.to(self.device)
        with network_inference(self.device, cpu_bf16=bf16):
            for start in range(0, len(frames), bs):
                x = to_tensor(frames[start : start + bs]).to(self.device, non_blocking=True)
                x = resize(x, 256)[..., 14:241, 14:241].contiguous()
                out.append(self.model(x).float().reshape(-1).cpu().numpy())
        return np.concatenate(out)

    @property
    def frame_batch(self) -> int:  # type: ignore[override]
        return max(1, int(self.config["batch_size"]))

    def reads(self, num_frames: int) -> FrameReads:
        return FrameReads(frames={"resmem": evenly_spaced(num_frames, int(self.config["frames_k"]))})

    def per_frame(self, name: str, frames: np.ndarray) -> np.ndarray:
        return self.score_frames(frames)

    def aggregate(self, work: Work, meta: VideoMeta, times: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        scores = work["resmem"].astype(np.float64)
        values = np.array([scores.mean(), scores.max(), scores.std()], dtype=np.float32)
        return values, {"prior_per_frame": [round(float(s), 3) for s in scores]}

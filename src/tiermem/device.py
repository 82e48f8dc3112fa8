"""Where networks run: `--device auto|cpu|cuda` for the mid, high, prior and text tiers and the
M3-S head's training.

`auto` takes CUDA when torch sees a GPU, else the CPU. On CUDA, image and video networks run
under bfloat16 autocast (batched across videos; the CPU workers decode and feed them), so their
features differ from float32 CPU features by rounding: they are stored under their own cache
key (`Tier.config_hash` adds the device), never mixed with CPU rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tiermem.errors import TiermemError

#: What `--device` takes.
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """ "cpu" or "cuda" for a `--device` value; "cuda" without a visible GPU is refused."""
    if device not in DEVICES:
        raise TiermemError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise TiermemError(
            "--device cuda: torch sees no CUDA GPU (torch.cuda.is_available() is False); use --device cpu"
        )
    return "cpu"


@contextmanager
def network_inference(device: str, cpu_bf16: bool = False) -> Iterator[None]:
    """Inference mode, with bfloat16 autocast on CUDA (and on the CPU when `cpu_bf16`)."""
    import torch

    dtype: Any = torch.bfloat16
    with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=device == "cuda" or cpu_bf16):
        yield


__all__ = ["DEVICES", "network_inference", "resolve_device"]

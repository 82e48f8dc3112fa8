"""Pretrained weights as data: where a file comes from, its licence, and the preprocessing it expects.

After torchvision's weight enums: every network tiermem runs is described by a `WeightsInfo`
(source, licence, mean/std, input size, class names), and every file it loads goes through
`load_state_file` (safetensors, or `torch.load(weights_only=True)`: loading never runs code).

Download policy, chosen for what a user expects:

* a file already in the cache (torch hub's ``checkpoints/`` directory for torchvision, the
  Hugging Face cache for timm) is used without touching the network;
* otherwise, like torchvision and timm themselves, the file is downloaded once, with a socket
  timeout so a silently dropped connection fails instead of hanging;
* ``TIERMEM_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) forbids downloads: a missing file raises
  `MissingWeightsError` at once, naming the expected path and the two ways to provide it
  (``--weights TIER=PATH`` or running once with network access).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiermem.errors import MissingWeightsError

#: Seconds a download may wait for the server on one read before giving up.
DOWNLOAD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WeightsInfo:
    """What a set of pretrained weights is: provenance and the input it was trained on."""

    name: str  # the spec a user writes: "efficientnet_lite0", "timm:convnext_tiny", ...
    source: str  # where the file comes from (package, URL, hub id, local path)
    licence: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size: int  # square input side the network sees
    categories: tuple[str, ...] = ()  # class names in logit order; empty: no labels
    resize: int = 0  # video networks: shorter side before the centre crop to `size`
    frames: int = 0  # video networks: clip length the weights were evaluated with
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def downloads_allowed() -> bool:
    """False when the user said offline (TIERMEM_OFFLINE or HF_HUB_OFFLINE set to a true value)."""
    for var in ("TIERMEM_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return False
    return True


@contextlib.contextmanager
def socket_timeout(seconds: float = DOWNLOAD_TIMEOUT_S) -> Iterator[None]:
    """urllib (used by torch.hub) waits forever by default; bound each blocking read instead."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def load_state_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A state dict from a local ``.safetensors`` file or a torch file, never executing code."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingWeightsError(f"{p}: weights file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(p), device="cpu")
        else:
            import torch

            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", UserWarning
                )  # pickle-protocol notes about a file refused anyway
                state = torch.load(p, map_location="cpu", weights_only=True)
    except MissingWeightsError:
        raise
    except Exception as exc:  # corrupt file, pickle with code, wrong format
        raise MissingWeightsError(
            f"{p}: not a safetensors or weights-only torch file ({_load_failure(exc)})"
        ) from None
    # Training checkpoints often wrap the weights; accept the usual wrappers.
    for key in ("state_dict", "model", "model_state"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise MissingWeightsError(f"{p}: holds a {type(state).__name__}, not a state dict")
    return state


def _load_failure(exc: Exception) -> str:
    """One line of why a weights file did not load; torch's advice to load it unsafely is left out."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:  # a pickle holding more than tensors and plain containers (maybe code)
        detail = next((line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()), "")
        return f"not a plain state dict of tensors: {detail}".rstrip(": ")
    text = re.sub(r"\[enforce fail at [^\]]*\]", "", text)  # C++ source locations of torch's zip reader
    return next((line.strip(" .") for line in text.splitlines() if line.strip(" .")), type(exc).__name__)


def weights_identity(weights: str | os.PathLike[str] | None) -> str:
    """What the feature cache keys on: ``default``, ``random-init``, or a local file's content
    hash (so features are recomputed when a file at the same path changes)."""
    if weights is None:
        return "random-init"
    if str(weights) == "default":
        return "default"
    p = Path(weights).expanduser()
    if not p.is_file():
        return f"missing:{p}"
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()[:16]


def missing_message(what: str, expected: Path | str, *, offline: bool, cause: str = "") -> str:
    """The one message every missing-weights failure gives: which file, where, and what to do."""
    why = "downloads are disabled (TIERMEM_OFFLINE)" if offline else f"the download failed ({cause})"
    return (
        f"pretrained weights for {what} are not available: {expected} does not exist and {why}. "
        "Provide them with --weights TIER=PATH on the command line (weights=PATH in Python; a state dict as .pth or "
        ".safetensors), or run once with network access so the file is cached there."
    )

"""A pretrained network seen as what the tiers need: pooled features and class logits in one pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tiermem.backbones.weights import WeightsInfo

#: `weights=` value meaning "the backbone's own pretrained weights" (packaged, cached or downloaded).
DEFAULT = "default"


class PooledClassifier(nn.Module):
    """Wraps a classification network so one forward gives (pooled features, logits).

    The pooled features are whatever enters the final classification layer (a hook reads
    them), so the network itself stays untouched and its weights load with ``strict=True``.
    """

    def __init__(self, net: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.net = net
        self._pooled: torch.Tensor | None = None
        head.register_forward_pre_hook(self._capture)
        if isinstance(head, nn.Linear):
            self.dim = head.in_features
        elif isinstance(head, nn.Conv3d | nn.Conv2d):
            self.dim = head.in_channels
        else:  # pragma: no cover - every supported family ends in Linear or 1x1 conv
            raise TypeError(f"unsupported classification head {type(head).__name__}")

    def _capture(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._pooled = args[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        pooled = self._pooled
        self._pooled = None
        assert pooled is not None, "classification head was not called"
        if pooled.ndim > 2:  # a 1x1-conv head (S3D) sees (N, C, T, H, W): average the rest
            pooled = pooled.flatten(2).mean(-1)
        return pooled, logits


@dataclass
class Backbone:
    """A loaded network, its weights' description, and whether it is really pretrained."""

    model: PooledClassifier
    info: WeightsInfo
    pretrained: bool  # False only for weights=None (random init, plumbing tests)
    weights_file: str = ""  # the file the weights came from, when there was one

    @property
    def dim(self) -> int:
        return self.model.dim


def last_linear(net: nn.Module) -> nn.Module:
    """The classification layer of a torchvision model: its last Linear (or 1x1 Conv3d, S3D)."""
    head: nn.Module | None = None
    for module in net.modules():
        if isinstance(module, nn.Linear | nn.Conv3d):
            head = module
    if head is None:  # pragma: no cover
        raise TypeError(f"{type(net).__name__} has no classification layer")
    return head

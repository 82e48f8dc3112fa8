"""The memorability head, its losses and its training loop.

    >>> from tiermem.model import M3SHead, RidgeHead, TrainConfig, load_head
"""

from __future__ import annotations

from tiermem.model.head import HEADS, Head, M3SHead, RidgeHead, Standardiser, load_head, make_head
from tiermem.model.losses import LOSSES, get_loss
from tiermem.model.train import EpochLog, TrainConfig

__all__ = [
    "EpochLog",
    "HEADS",
    "Head",
    "LOSSES",
    "M3SHead",
    "RidgeHead",
    "Standardiser",
    "TrainConfig",
    "get_loss",
    "load_head",
    "make_head",
]

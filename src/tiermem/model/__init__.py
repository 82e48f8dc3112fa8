"""Memorability heads (the M3-S MLP and ridge), their losses, and how they train.

    >>> from tiermem.model import get_head, load_head, list_heads
    >>> head = get_head("ridge").fit(X, y)

Importing this package does not import torch; the M3-S head imports it when it trains or loads.
"""

from __future__ import annotations

from tiermem.model.base import Head, get_head, list_heads, load_head, register_head
from tiermem.model.config import EpochLog, TrainConfig
from tiermem.model.m3s import M3SHead
from tiermem.model.options import HeadOptions, parse_hidden
from tiermem.model.ridge import RidgeHead

__all__ = [
    "EpochLog",
    "Head",
    "HeadOptions",
    "M3SHead",
    "RidgeHead",
    "TrainConfig",
    "get_head",
    "list_heads",
    "load_head",
    "parse_hidden",
    "register_head",
]

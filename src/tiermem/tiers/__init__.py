"""Tier registry, after timm's model registry: a name maps to a tier class.

    >>> from tiermem.tiers import get_tier, list_tiers
    >>> list_tiers()
    ['high', 'low', 'mid', 'prior', 'text']
    >>> low = get_tier("low", pca_components=10)
    >>> len(low.feature_names), low.requires_fit     # 36 features; its HOG PCA is fitted on training clips
    (36, True)

Tiers register themselves with `@register_tier`. Torch-based tiers cost seconds to import, so
`get_tier("low")` imports only the low tier's module, and `list_tiers()` imports none.
"""

from __future__ import annotations

from typing import Any, TypeVar

from tiermem.registry import Registry
from tiermem.runtime import sync_threads
from tiermem.tiers.base import Tier, TierResult

T = TypeVar("T", bound=type[Tier])

_TIERS: Registry[type[Tier]] = Registry(
    "tier", modules=[f"tiermem.tiers.{module}" for module in ("low", "mid", "high", "text", "prior")],
    decorator_name="register_tier",
)  # fmt: skip


def register_tier(cls: T) -> T:
    """Class decorator: make `cls` available as `get_tier(cls.name)`."""
    _TIERS.register(cls.name, cls)
    return cls


def list_tiers() -> list[str]:
    """Names of every registered tier."""
    return _TIERS.names()


def get_tier(name: str, **config: Any) -> Tier:
    """Build the tier registered under `name` with its configuration."""
    tier = _TIERS.build(name, **config)
    sync_threads()  # the tier's module may just have imported torch
    return tier


__all__ = ["Tier", "TierResult", "get_tier", "list_tiers", "register_tier"]

"""Tier registry, after timm's model registry: a name maps to a builder.

    >>> from tiermem.tiers import get_tier
    >>> low = get_tier("low", frames=45)

Tiers register themselves with `@register_tier`; importing this package imports every
built-in tier module so the registry is complete.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

from tiermem.errors import TiermemError
from tiermem.runtime import sync_threads
from tiermem.tiers.base import Tier, TierResult

T = TypeVar("T", bound=type[Tier])

_REGISTRY: dict[str, type[Tier]] = {}
_BUILTIN_MODULES = ("low", "mid", "high", "text", "prior")


def register_tier(cls: T) -> T:
    """Class decorator: make `cls` available as `get_tier(cls.name)`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no tier name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins(names: tuple[str, ...] = _BUILTIN_MODULES) -> None:
    """Import built-in tier modules; each registers itself. Torch-based tiers cost seconds to
    import, so `get_tier("low")` imports only the low tier's module."""
    for mod in names:
        importlib.import_module(f"tiermem.tiers.{mod}")


def available_tiers() -> list[str]:
    """Names of every registered tier."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_tier(name: str, **config: Any) -> Tier:
    """Build the tier registered under `name` with its configuration."""
    _load_builtins((name,) if name in _BUILTIN_MODULES else _BUILTIN_MODULES)
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise TiermemError(
            f"unknown tier {name!r}; available: {', '.join(sorted(_REGISTRY)) or 'none'}"
        ) from None
    tier = cls(**config)
    sync_threads()  # the tier's module may just have imported torch
    return tier


__all__ = ["Tier", "TierResult", "available_tiers", "get_tier", "register_tier"]

"""The registry of heads: `register_head`, `get_head`, `list_heads` (listing imports no head)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiermem.registry import Registry

if TYPE_CHECKING:
    from tiermem.model.base import Head

_HEADS: Registry[type["Head"]] = Registry("head", modules={"ridge": "tiermem.model.ridge", "m3s": "tiermem.model.m3s",
                                                           "auto": "tiermem.model.auto"})
#: Class decorator: register a head under its `kind`.
register_head = _HEADS.decorator(lambda cls: cls.kind)


def get_head(kind: str, **params: Any) -> "Head":
    """Build an unfitted head by kind (``"m3s"``, ``"ridge"`` or ``"auto"``) with its parameters."""
    return _HEADS.build(kind, **params)


def get_head_class(kind: str) -> type["Head"]:
    """The class registered as `kind` (to rebuild a saved head from its state)."""
    return _HEADS.get(kind)


def list_heads() -> list[str]:
    """Names accepted by `get_head`."""
    return _HEADS.names()


__all__ = ["get_head", "get_head_class", "list_heads", "register_head"]

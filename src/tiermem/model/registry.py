"""The registry of heads: `register_head`, `get_head`, `get_head_class`, `list_heads` (listing
imports no head). The registry lives beside the head contract in `tiermem.model.base`, which
also rebuilds saved heads by their kind; this module is its short import path."""

from tiermem.model.base import get_head, get_head_class, list_heads, register_head

__all__ = ["get_head", "get_head_class", "list_heads", "register_head"]

"""Packages whose public names load on first use, so importing them stays quick.

A package's `__init__` declares which module each public name lives in::

    __getattr__, __dir__ = lazy_exports(__name__, {"load": "tiermem.models", ...})

and ``import tiermem`` or ``from tiermem.datasets.registry import list_datasets`` imports no
heavy library (torch, scikit-learn, pandas) until a name that needs one is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: name -> the module it is imported from.

    A value maps to ``"module"`` (same attribute name) or ``"module:attribute"``.
    """

    def __getattr__(name: str) -> Any:
        try:
            module, _, attribute = exports[name].partition(":")
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        # What the package offers, not what its own imports left in its namespace (``lazy``,
        # ``annotations``, the export map): the exports, `__all__` and the module's dunders.
        module = sys.modules[package]
        dunders = {n for n in vars(module) if n.startswith("__") and n.endswith("__")}
        return sorted({*dunders, *exports, *getattr(module, "__all__", ())})

    return __getattr__, __dir__


__all__ = ["lazy_exports"]

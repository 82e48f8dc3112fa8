"""One registry shape for every pluggable part, after timm's model registry.

Tiers, distinctiveness methods, heads, losses, dataset readers and image backbones each keep a
`Registry`; their modules expose it as three functions of one shape::

    @register_tier                       # registered under the class's own name
    class LowTier(Tier): ...

    get_tier("low", frames=45)           # build (or fetch) the registered entry by name
    list_tiers()                         # every registered name, sorted: the CLI's choices

A name that is not registered raises one `TiermemError` line that lists the known names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from tiermem.errors import TiermemError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names mapped to entries (classes or functions) of one kind, e.g. "tier" or "loss".

    `modules` maps each built-in name to the module that registers it when imported. Such a
    module is imported only when its entry is asked for, and listing names imports nothing:
    asking for the light "low" tier does not import torch for the others, and the command
    line lists every choice in its help without loading scikit-learn or torch.
    """

    def __init__(
        self,
        kind: str,
        *,
        modules: Mapping[str, str] | None = None,
        error: type[TiermemError] = TiermemError,
    ) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._modules = dict(modules or {})
        self._error = error

    def register(self, name: str, entry: T) -> T:
        """Add `entry` under `name` (a later registration of the same name replaces it)."""
        if not name:
            raise ValueError(f"a {self.kind} needs a name to be registered")
        self._entries[name] = entry
        return entry

    def decorator(self, name_of: Callable[[T], str] = lambda entry: entry.name) -> Callable[[T], T]:  # type: ignore[attr-defined]
        """A decorator that registers its target under `name_of(target)`: its `name` attribute
        unless said otherwise (a function's name for losses)."""

        def register(entry: T) -> T:
            return self.register(name_of(entry), entry)

        return register

    def get(self, name: str) -> T:
        """The entry registered as `name`; an unknown name raises one line listing the known ones."""
        if name not in self._entries and name in self._modules:
            importlib.import_module(self._modules[name])
        try:
            return self._entries[name]
        except KeyError:
            raise self._error(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names()) or 'none'}"
            ) from None

    def build(self, name: str, **params: Any) -> Any:
        """Call the entry registered as `name` with `params` (a class: an instance of it); a
        parameter it does not take raises one line naming the entry."""
        entry = self.get(name)
        try:
            return entry(**params)  # type: ignore[operator]
        except TypeError as exc:
            raise self._error(f"{self.kind} {name!r}: {exc}") from None

    def names(self) -> list[str]:
        """Every registered name and built-in name, sorted (nothing is imported)."""
        return sorted(set(self._entries) | set(self._modules))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()


__all__ = ["Registry"]

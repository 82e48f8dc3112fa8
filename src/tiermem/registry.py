"""One registry shape for every pluggable part, after timm's model registry.

Tiers, distinctiveness methods, heads, losses, dataset readers and image backbones each keep a
`Registry`; their modules expose it as three functions of one shape::

    @register_tier                       # registered under the class's own name
    class LowTier(Tier): ...

    get_tier("low", frames=45)           # build (or fetch) the registered entry by name
    list_tiers()                         # every registered name, sorted: the CLI's choices

A name that is not registered raises one `TiermemError` line that lists the known names.

Each built-in name is written once, where its entry is defined (a class's ``name``, or the
name given to the decorator). Listing names imports nothing: the registry reads them from the
source of the modules that register built-in entries (`declared_names`), and imports a module
only when one of its entries is asked for.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from tiermem.errors import TiermemError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names mapped to entries (classes or functions) of one kind, e.g. "tier" or "loss".

    `modules` are the modules that register built-in entries when imported (with `decorator`,
    the decorator named `decorator_name`). Such a module is imported only when one of its
    entries is asked for, and listing names imports nothing: asking for the light "low" tier
    does not import torch for the others, and the command line lists every choice in its help
    without loading scikit-learn or torch.
    """

    def __init__(
        self,
        kind: str,
        *,
        modules: Sequence[str] = (),
        decorator_name: str = "",
        error: type[TiermemError] = TiermemError,
    ) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._module_names = tuple(modules)
        self._decorator_name = decorator_name
        self._error = error

    def builtin(self) -> dict[str, str]:
        """Built-in name -> the module that registers it, read from the modules' source."""
        return {
            name: module
            for module in self._module_names
            for name in declared_names(module, self._decorator_name)
        }

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
        if name not in self._entries and name in self.builtin():
            importlib.import_module(self.builtin()[name])
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

    def registered(self) -> dict[str, T]:
        """The entries registered so far (built-in ones once their module is imported), by name."""
        return dict(self._entries)

    def names(self) -> list[str]:
        """Every registered name and built-in name, sorted (nothing is imported)."""
        return sorted(set(self._entries) | set(self.builtin()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()


@cache
def declared_names(module: str, decorator: str) -> tuple[str, ...]:
    """The names `module` registers with `decorator`, read from its source without importing it:
    a decorated class's ``name = "..."``, or the first argument of ``@decorator("...")``."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"no module {module} to read registered names from")
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    names = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            continue
        for deco in node.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            target = call.func if call is not None else deco
            if not (isinstance(target, ast.Name) and target.id == decorator):
                continue
            if call is not None and call.args and isinstance(call.args[0], ast.Constant):
                names.append(str(call.args[0].value))
            elif isinstance(node, ast.ClassDef):
                names += [value for item in node.body if (value := _class_name(item)) is not None]
    return tuple(names)


def _class_name(item: ast.stmt) -> str | None:
    """The string of a class body's ``name = "..."`` (or ``name: ClassVar[str] = "..."``)."""
    if isinstance(item, ast.Assign):
        targets, value = item.targets, item.value
    elif isinstance(item, ast.AnnAssign) and item.value is not None:
        targets, value = [item.target], item.value
    else:
        return None
    named = any(isinstance(t, ast.Name) and t.id == "name" for t in targets)
    return str(value.value) if named and isinstance(value, ast.Constant) else None


__all__ = ["Registry", "declared_names"]

"""The registry of distinctiveness methods: `register_distinctiveness`, `get_distinctiveness`,
`list_distinctiveness`. Listing names imports no method (nor scikit-learn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiermem.registry import Registry

if TYPE_CHECKING:
    from tiermem.distinctiveness.base import Distinctiveness

_METHODS: Registry[type["Distinctiveness"]] = Registry(
    "distinctiveness method",
    modules={name: f"tiermem.distinctiveness.{name}" for name in ("cosine", "dbscan", "kde", "knn")},
)
#: Class decorator: make a method available as `get_distinctiveness(cls.method)`.
register_distinctiveness = _METHODS.decorator(lambda cls: cls.method)


def list_distinctiveness() -> list[str]:
    """Names accepted by `get_distinctiveness`, sorted."""
    return _METHODS.names()


def get_distinctiveness(method: str, **params: Any) -> "Distinctiveness":
    """Build the estimator registered as `method` with its parameters (unfitted)."""
    return _METHODS.build(method, **params)


__all__ = ["get_distinctiveness", "list_distinctiveness", "register_distinctiveness"]

"""The registry of distinctiveness methods: `register_distinctiveness`, `get_distinctiveness`,
`list_distinctiveness`. Listing names imports no method (nor scikit-learn). The registry lives
beside the estimator contract in `tiermem.distinctiveness.base`, which also rebuilds saved
estimators by their method; this module is its short import path."""

from tiermem.distinctiveness.base import get_distinctiveness, list_distinctiveness, register_distinctiveness

__all__ = ["get_distinctiveness", "list_distinctiveness", "register_distinctiveness"]

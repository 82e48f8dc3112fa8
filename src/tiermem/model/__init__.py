"""Memorability heads (the M3-S MLP, ridge, kernel ridge, their ensemble, and the auto head that
chooses among them), their losses, how they train, and the scaling of targets outside [0, 1].

    >>> from tiermem.model import get_head, list_heads, load_head
    >>> list_heads()
    ['auto', 'ensemble', 'kernel-ridge', 'm3s', 'ridge']
    >>> X = np.random.default_rng(0).normal(size=(40, 4)); y = 1 / (1 + np.exp(-X[:, 0]))
    >>> head = get_head("ridge").fit(X, y)
    >>> again = load_head(head.save(f"{out}/head"))
    >>> bool(np.allclose(again.predict(X), head.predict(X)))
    True

Names load on first use; the M3-S head imports torch only when it trains or loads.
"""

from __future__ import annotations

from tiermem.lazy import lazy_exports

_EXPORTS = {
    "Head": "tiermem.model.base",
    "load_head": "tiermem.model.base",
    "get_head": "tiermem.model.registry",
    "list_heads": "tiermem.model.registry",
    "register_head": "tiermem.model.registry",
    "EpochLog": "tiermem.model.config",
    "TrainConfig": "tiermem.model.config",
    "M3SHead": "tiermem.model.m3s",
    "KernelRidgeHead": "tiermem.model.kernel_ridge",
    "EnsembleHead": "tiermem.model.ensemble",
    "AutoHead": "tiermem.model.auto",
    "HeadOptions": "tiermem.model.options",
    "parse_hidden": "tiermem.model.options",
    "RidgeHead": "tiermem.model.ridge",
    "TargetScaling": "tiermem.model.scaling",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

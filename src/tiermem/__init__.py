"""tiermem: how memorable is a video, and why (M3-S, Dumont et al., CVPR 2023, and beyond).

Three lines score videos::

    import tiermem
    model = tiermem.load("zero-shot")            # or a directory written by `tiermem fit`
    result = model.predict("video.mp4")          # a path, a list of paths, or a directory
    result.table                                 # video_id, path, score, percentile, contrib_<tier>

The verbs at the root:

- `load(model)`: a fitted artifact directory, or a named model (`list_models()`).
- `fit(dataset, cache=..., tiers=..., head=...)`: learn a pipeline on a dataset's training split;
  `evaluate(pipeline, dataset)`: validation metrics, tier ablation and maps.
- `extract(videos, tiers=..., out=...)`: tier features of many videos into a cached feature store.
- `read_dataset(layout, path)` / `list_datasets()`: readers of the published dataset layouts.
- `get_tier(name)` / `list_tiers()`: the tiers (low, mid, high, text, prior).
- `Pipeline`, `PipelineConfig`: the fitted whole, for finer control.

Modules load on first use, so ``import tiermem`` is quick.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> (module, attribute in it).
_EXPORTS = {
    "load": ("tiermem.models", "load"),
    "list_models": ("tiermem.models", "list_models"),
    "fit": ("tiermem.api", "fit"),
    "evaluate": ("tiermem.evaluation", "evaluate_pipeline"),
    "extract": ("tiermem.extraction", "extract"),
    "read_dataset": ("tiermem.datasets", "read_dataset"),
    "list_datasets": ("tiermem.datasets", "list_datasets"),
    "get_tier": ("tiermem.tiers", "get_tier"),
    "list_tiers": ("tiermem.tiers", "list_tiers"),
    "Pipeline": ("tiermem.pipeline", "Pipeline"),
    "PipelineConfig": ("tiermem.pipeline", "PipelineConfig"),
    "Predictions": ("tiermem.predictions", "Predictions"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'tiermem' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])

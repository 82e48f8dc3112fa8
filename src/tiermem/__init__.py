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
- `Run(workers=..., engine=..., device=..., on_progress=...)`: where and how a call's work runs;
  `fit`, `extract` and `predict` take one as ``run=``.

Modules load on first use, so ``import tiermem`` is quick.
"""

from __future__ import annotations

from tiermem.lazy import lazy_exports

__version__ = "0.1.0"

#: Public name -> the module it comes from ("module:attribute" where the names differ).
_EXPORTS = {
    "load": "tiermem.models",
    "list_models": "tiermem.models",
    "fit": "tiermem.api",
    "evaluate": "tiermem.api:evaluate",
    "extract": "tiermem.extraction",
    "read_dataset": "tiermem.datasets.registry",
    "list_datasets": "tiermem.datasets.registry",
    "get_tier": "tiermem.tiers",
    "list_tiers": "tiermem.tiers",
    "Pipeline": "tiermem.pipeline",
    "PipelineConfig": "tiermem.pipeline_config",
    "Predictions": "tiermem.predictions",
    "Run": "tiermem.run",
}

__all__ = ["__version__", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""The verbs at the package root: fit a pipeline on a dataset, evaluate it.

`tiermem.load`, `tiermem.extraction`, `tiermem.read_dataset` and the `get_*`/`list_*` registries
live in their own modules; this one holds what joins them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tiermem.datasets.record import Dataset
from tiermem.errors import TiermemError
from tiermem.pipeline import Pipeline, PipelineConfig
from tiermem.run import Run


def fit(
    dataset: Dataset,
    *,
    cache: str | os.PathLike[str],
    target: str | None = None,
    tiers: Sequence[str] = ("low", "mid"),
    distinct: Sequence[str] = (),
    head: str = "auto",
    preset: str = "m3s",
    run: Run | None = None,
    **config: Any,
) -> Pipeline:
    """Fit a pipeline on `dataset`'s training split, its features cached in `cache`.

    `run` (`tiermem.run.Run`): the workers, engine and device of the extraction and of the
    head's training, and who hears of the progress. `target` defaults to the dataset layout's standard score; `config` takes any other
    `PipelineConfig` field (``head_params``, ``frames``, ``distinct_params``, ...). Then
    `tiermem.evaluate(pipeline, dataset)` measures it and `pipeline.save(dir)` writes it.

    `preset` (`tiermem.presets`) makes a whole set of choices: ``"m3s-reference"`` those of the
    M3-S reference code for this dataset (its head settings, low-tier variant, DBSCAN on the
    mid and high tiers); `head`, `distinct` and config fields given here win over it.

        paper = tiermem.fit(ds, cache="features/", tiers=["low", "mid", "high"], preset="m3s-reference")

        >>> ds = tiermem.read_dataset("memento10k", memento_root)      # the authors' JSON release layout
        >>> model = tiermem.fit(ds, cache=f"{out}/features", tiers=["low"], head="ridge", frames=9, size=128)
        >>> model.config.tiers, model.head_.name, len(model.train_scores_)
        (['low'], 'ridge', 15)
    """
    from tiermem.model.options import HeadOptions
    from tiermem.presets import get_preset

    target = target or dataset.default_target
    if target is None:
        raise TiermemError(
            f"dataset {dataset.name}: name the target to learn (its scores: {', '.join(dataset.targets)})"
        )
    chosen = get_preset(preset, dataset.name)
    if chosen.head and "head_params" not in config:
        options = HeadOptions(head=head, preset=chosen.name, seed=int(config.get("seed", 0))).with_preset()
        head, config["head_params"] = options.head, options.params()
    config = chosen.pipeline_config(list(tiers), {**config, "distinct": list(distinct)})
    cfg = PipelineConfig(target=target, tiers=list(tiers), head=head, preset=chosen.name, **config)
    return Pipeline(cfg).fit(dataset, cache, run=run)


def evaluate(
    pipeline: Pipeline,
    dataset: Dataset,
    cache: str | os.PathLike[str] | None = None,
    *,
    ablate: bool | None = None,
    run: Run | None = None,
):  # -> tiermem.pipeline_state.PipelineEvaluation
    """Evaluate `pipeline`, just fitted on `dataset`, on its validation and test splits:
    Spearman with its bootstrap CI under both protocols, per-video tier contributions, the tier
    ablation and t-SNE maps. The pipeline keeps the evaluation, and `pipeline.save` writes it.

        >>> evaluation = tiermem.evaluate(fitted_model, ds)
        >>> evaluation.metrics["n_val"], "spearman" in evaluation.metrics["val"], len(evaluation.predictions)
        (6, True, 6)
    """
    return pipeline.evaluate(dataset, cache, ablate=ablate, run=run)


__all__ = ["evaluate", "fit"]

"""How well a fitted pipeline does on the videos it did not learn from, and why.

`evaluate_pipeline` reads a pipeline that was just fitted and the same dataset: it extracts
the validation (and test) split with the training split's tier state, reports Spearman with
its bootstrap CI, explains every validation video tier by tier, runs the tier ablation (the
configured head and ridge on each tier alone, all but one, all) and draws t-SNE maps. It
learns nothing the pipeline keeps: the result is a `PipelineEvaluation`, saved beside the
model by `Pipeline.save` and shown by `tiermem report`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from tiermem.blocks import BlockLayout
from tiermem.datasets.record import Dataset
from tiermem.errors import TiermemError
from tiermem.features import dataset_paths, extract_features, frame_tiers, load_facts, report_failures
from tiermem.metrics import evaluate
from tiermem.pipeline_config import PipelineConfig
from tiermem.pipeline_fit import TrainingSet
from tiermem.pipeline_state import PipelineEvaluation
from tiermem.run import Run
from tiermem.splits import dataset_splits


class JustFitted(Protocol):
    """What evaluation reads of a `tiermem.pipeline.Pipeline` fitted in this process."""

    config: PipelineConfig
    layout_: list[BlockLayout]
    head_: Any
    training_: TrainingSet  # the head's training inputs
    fit_failed_: list[tuple[str, str]]
    store_dir_: str

    @property
    def state_dir(self) -> Path: ...

    def features(
        self, store_dir: Path, ids: list[str], *, on_missing: str = "raise"
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def shapley(self, X: np.ndarray) -> Any: ...


def evaluate_pipeline(
    pipeline: JustFitted,
    dataset: Dataset,
    cache: str | os.PathLike[str] | None = None,
    *,
    ablate: bool | None = None,
    run: Run | None = None,
) -> PipelineEvaluation:
    """Evaluate a pipeline fitted on `dataset` in this process on its validation and test splits.

    `cache` defaults to the fit's feature store; `ablate` to the pipeline's config.
    """
    from tiermem.ablation import ablate_matrix, tier_ablation_frame
    from tiermem.maps import tsne_maps
    from tiermem.model.protocols import refit_watching, two_protocols
    from tiermem.model.registry import get_head

    training = getattr(pipeline, "training_", None)
    if training is None:
        raise TiermemError(
            "evaluation needs the training features of a fit in this process: call Pipeline.fit first"
        )
    cfg = pipeline.config
    run = Run.of(run)
    store_dir = Path(cache) if cache is not None else Path(pipeline.store_dir_)
    splits = dataset_splits(dataset, cfg.target, cfg.val_fraction, cfg.seed)
    ids = np.asarray(dataset.ids).astype(str)
    paths = dataset_paths(dataset)
    held_out = splits.val | splits.test
    failed = list(pipeline.fit_failed_)
    if held_out.any() and frame_tiers(cfg.tiers):
        run.note("features: validation/test splits (training state reused)")
        report = extract_features(
            [Path(p) for p in paths[held_out]],
            frame_tiers(cfg.tiers),
            store_dir,
            decode=cfg.decode,
            tier_config=cfg.tier_config,
            state=pipeline.state_dir,
            run=run,
        )
        new = list(report.failed) if report is not None else []
        report_failures(new, run)
        failed += new
    splits = splits.without(ids, {Path(p).stem for p, _ in failed})
    y_all = dataset.scores[cfg.target].to_numpy(dtype=np.float64)
    index = {v: i for i, v in enumerate(ids)}

    va_ids, X_va = pipeline.features(store_dir, list(ids[splits.val]), on_missing="drop")
    y_va = y_all[[index[v] for v in va_ids]]
    kept = set(va_ids)
    metrics: dict[str, Any] = {
        "n_train": int(len(training.y)),
        "n_val": int(len(y_va)),
        "failed": [{"path": str(p), "reason": r} for p, r in failed],
        "dropped": training.dropped + [str(v) for v in ids[splits.val] if v not in kept],
        "val": evaluate(y_va, pipeline.head_.predict(X_va)).to_dict() if len(y_va) >= 3 else None,
    }
    if len(y_va) >= 3:  # the paper protocol's figure: the same training, epochs picked on validation
        watcher = refit_watching(pipeline.head_, training.X, training.y, X_va, pipeline.layout_)
        metrics["validation"] = two_protocols(watcher, X_va, y_va).to_dict()
    if splits.test.any():
        te_ids, X_te = pipeline.features(store_dir, list(ids[splits.test]), on_missing="drop")
        if len(te_ids) >= 3:
            metrics["test"] = evaluate(
                y_all[[index[v] for v in te_ids]], pipeline.head_.predict(X_te)
            ).to_dict()
            metrics["n_test"] = int(len(te_ids))

    shap = pipeline.shapley(X_va)
    predictions = pd.DataFrame(
        {
            "video_id": va_ids,
            "path": [str(paths[index[v]]) for v in va_ids],
            "true": y_va,
            "score": shap.scores,
        }
    )
    for j, name in enumerate(shap.tier_names):
        predictions[f"contrib_{name}"] = shap.values[:, j]

    ablation = None
    if (cfg.ablate if ablate is None else ablate) and len(pipeline.layout_) > 1:
        heads = [(cfg.head, lambda: get_head(cfg.head, **cfg.head_params))]
        if cfg.head != "ridge":
            heads.append(("ridge", lambda: get_head("ridge")))
        rows = ablate_matrix(
            training.X,
            training.y,
            X_va,
            y_va,
            pipeline.layout_,
            heads,
            on_row=lambda r: run.note(f"tier ablation: {r.label} ({r.head}) ρ {r.val.spearman:.3f}"),
        )
        ablation = tier_ablation_frame(rows)
    maps = tsne_maps(
        np.vstack([training.X, X_va]), np.concatenate([training.y, y_va]), pipeline.layout_, seed=cfg.seed
    )
    return PipelineEvaluation(
        metrics, predictions, load_facts(store_dir, cfg.tiers, list(va_ids)), ablation, maps
    )


__all__ = ["PipelineEvaluation", "evaluate_pipeline"]

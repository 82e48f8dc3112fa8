"""Fitting a pipeline: from a dataset's training split to a `PipelineState`.

The training split's videos are extracted (cached in the feature store), which fits the tiers'
state (the low tier's HOG PCA) on them; then each distinctiveness context is fitted on the
training features (leave-one-out for the training videos themselves), and the head on the
tiers' and distinctiveness blocks. Nothing of the validation or test split is read.
`Pipeline.fit` calls `fit_pipeline` and keeps what it returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiermem.blocks import DISTINCT_BLOCK, BlockLayout, join_blocks
from tiermem.datasets.record import Dataset
from tiermem.errors import DataMismatchError, TiermemError
from tiermem.features import dataset_paths, extract_features, frame_tiers, load_tier_blocks, report_failures
from tiermem.pipeline_config import PipelineConfig
from tiermem.pipeline_state import PipelineState
from tiermem.run import Run
from tiermem.splits import dataset_splits
from tiermem.store import FeatureStore
from tiermem.video.stream import median_duration


@dataclass
class TrainingSet:
    """The design matrix the head was fitted on (distinctiveness leave-one-out included).

    Kept in memory after `fit` for the evaluation that follows it (the ablation refits heads
    on it); never saved in the artifact.
    """

    X: np.ndarray
    y: np.ndarray
    dropped: list[str]  # labelled training videos missing from some block


@dataclass
class FittedPipeline:
    """What a fit gives: the state a pipeline keeps, the training set the evaluation reuses, and
    the training videos that failed to extract (path, reason)."""

    state: PipelineState
    training: TrainingSet
    failed: list[tuple[str, str]]


def fit_pipeline(cfg: PipelineConfig, dataset: Dataset, store_dir: Path, run: Run) -> FittedPipeline:
    """Fit `cfg` on `dataset`'s training split, its features cached in `store_dir`."""
    from tiermem.model.scaling import TargetScaling

    cfg.validate()
    if dataset.paths is None and frame_tiers(cfg.tiers):
        raise TiermemError(f"dataset {dataset.name} has no video files; frame tiers need videos")
    splits = dataset_splits(dataset, cfg.target, cfg.val_fraction, cfg.seed)
    try:  # constant targets leave nothing to learn: say so before extracting anything
        TargetScaling.fit(dataset.scores[cfg.target].to_numpy(dtype=np.float64)[splits.train])
    except TiermemError as exc:
        raise DataMismatchError(f"dataset {dataset.name}, target {cfg.target!r}: {exc}") from None
    if splits.left_out:
        run.note(
            f"{sum(splits.left_out.values())} labelled videos in no train/val/test split "
            f"({', '.join(splits.left_out)}) are left out",
            warning=True,
        )
    ids = np.asarray(dataset.ids).astype(str)
    paths = dataset_paths(dataset)
    store_dir.mkdir(parents=True, exist_ok=True)
    # Fitted tier state (the low tier's HOG PCA) must come from the training videos: drop any
    # state this cache holds from another run, so extraction refits it on the training split
    # (a deterministic refit on the same videos gives the same state, keeping cached rows).
    for tier in cfg.tiers:
        FeatureStore(store_dir).state_path(tier).unlink(missing_ok=True)
    captions = dict(zip(ids, dataset.captions)) if dataset.captions is not None else None
    run.note("features: training split (fits the tiers' state)")
    report = extract_features(
        [Path(p) for p in paths[splits.train]],
        cfg.tiers,
        store_dir,
        decode=cfg.decode,
        tier_config=cfg.tier_config,
        captions=captions,
        run=run,
    )
    failed = list(report.failed) if report is not None else []
    report_failures(failed, run)
    train = splits.without(ids, {Path(p).stem for p, _ in failed}).train

    state, training = learn(cfg, dataset, store_dir, ids[train], paths[train], run)
    return FittedPipeline(state, training, failed)


def learn(
    cfg: PipelineConfig, dataset: Dataset, store_dir: Path, video_ids: np.ndarray, paths: np.ndarray, run: Run
) -> tuple[PipelineState, TrainingSet]:
    """The distinctiveness contexts and the head of `cfg`, fitted on the stored features of
    `video_ids` (their tier state already fitted), as a `PipelineState`."""
    from tiermem.distinctiveness.registry import get_distinctiveness
    from tiermem.model.registry import get_head

    joined = join_blocks(load_tier_blocks(store_dir, cfg.tiers), video_ids, on_missing="drop")
    X, layout = joined.X, list(joined.layout)
    contexts = []
    if cfg.distinct:
        parts, names = [], []
        for method, source, params in cfg.distinct_contexts():
            est = get_distinctiveness(method, source=source, **params)
            parts.append(est.fit_transform(X[:, joined.slices[source]]))  # leave-one-out on the context
            names += est.feature_names
            summary = {k: v for k, v in est.summary().items() if k != "features"}
            run.note(f"distinctiveness {method} on {source}: {json.dumps(summary, default=float)}")
            contexts.append(est)
        X = np.hstack([X, *parts]).astype(np.float32)
        layout.append(BlockLayout(DISTINCT_BLOCK, names))
    index = {v: i for i, v in enumerate(np.asarray(dataset.ids).astype(str))}
    y = dataset.scores[cfg.target].to_numpy(dtype=np.float64)[[index[v] for v in joined.ids]]

    run.note(f"head: {cfg.head}")
    head = get_head(cfg.head, **cfg.head_params)
    if hasattr(head, "device"):  # a network head trains where the tiers' networks run
        head.device = run.network_device
    # Epochs are picked on an inner split of these videos, never on validation.
    head.fit(X, y, layout=layout, progress=run.on_progress)
    state = PipelineState(
        config=cfg,
        layout=layout,
        head=head,
        distinct=contexts,
        baseline=X.mean(axis=0).astype(np.float64),
        train_predictions=np.sort(head.predict(X).astype(np.float64)),
        train_scores=np.sort(y),
        clip_seconds=median_duration([Path(p) for p in paths]),
        dataset_name=dataset.name,
        tier_state=store_dir,
    )
    return state, TrainingSet(X, y, list(joined.dropped))


def refit_pipeline(
    cfg: PipelineConfig, dataset: Dataset, store_dir: Path, failed: list[tuple[str, str]], run: Run
) -> tuple[PipelineState, TrainingSet]:
    """`cfg` fitted again on every labelled video of the training and validation splits (not the
    test split), with the tier state fitted on the training split (its features are unchanged:
    cached rows are reused); videos that failed to extract stay out."""
    splits = dataset_splits(dataset, cfg.target, cfg.val_fraction, cfg.seed)
    ids = np.asarray(dataset.ids).astype(str)
    paths = dataset_paths(dataset)
    labelled = splits.train | splits.val
    run.note("refit: features of the training and validation splits (training state reused)")
    report = extract_features(
        [Path(p) for p in paths[labelled]],
        frame_tiers(cfg.tiers),
        store_dir,
        decode=cfg.decode,
        tier_config=cfg.tier_config,
        state=store_dir,
        run=run,
    ) if frame_tiers(cfg.tiers) else None  # fmt: skip
    failed = failed + (list(report.failed) if report is not None else [])
    keep = splits.without(ids, {Path(p).stem for p, _ in failed})
    everyone = keep.train | keep.val
    return learn(cfg, dataset, store_dir, ids[everyone], paths[everyone], run)


__all__ = ["FittedPipeline", "TrainingSet", "fit_pipeline", "learn", "refit_pipeline"]

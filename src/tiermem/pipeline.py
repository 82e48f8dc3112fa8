"""The fitted whole: tiers + distinctiveness + head, saved as one artifact directory.

    fit:      dataset -> extract the training split's tiers (cached) -> fit the low-tier PCA,
              the distinctiveness context and the head on the TRAINING split only
    predict:  raw videos -> the same tiers with the saved fitted state -> score, percentile,
              exact Shapley contribution of each tier, and the facts behind them

Evaluation (validation metrics, ablation, maps) is a separate step: `tiermem.evaluation`.
The artifact's layout is `tiermem.artifact`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from tiermem.artifact import load_state, save_state
from tiermem.blocks import DISTINCT_BLOCK, BlockLayout, join_blocks
from tiermem.datasets.record import Dataset
from tiermem.errors import DataMismatchError, TiermemError
from tiermem.features import (
    TEXT_TIERS,
    extract_features,
    frame_tiers,
    load_facts,
    load_tier_blocks,
)
from tiermem.inputs import PathInputs, find_videos
from tiermem.metrics import midrank_percentile
from tiermem.pipeline_config import PipelineConfig
from tiermem.pipeline_state import PipelineEvaluation, PipelineState
from tiermem.predictions import Predictions
from tiermem.run import Run
from tiermem.store import FeatureStore
from tiermem.store_memory import MemoryStore
from tiermem.tiers.base import Tier


class Pipeline:
    """Tiers + distinctiveness + head. Construct with a config; `fit` learns; `predict` scores."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.evaluation: PipelineEvaluation | None = None  # once evaluated, or loaded with one
        self._tiers: dict[str, Tier] | None = None  # the fitted frame tiers, built on first use

    # -- learning -----------------------------------------------------------------------------
    def fit(
        self,
        dataset: Dataset,
        cache: str | os.PathLike[str],
        *,
        run: Run | None = None,
    ) -> "Pipeline":
        """Extract the training split's tiers (workers, engine and device as `run` says, see
        `tiermem.run.Run`), fit their state, distinctiveness and the head on it
        (`tiermem.pipeline_fit`)."""
        from tiermem.pipeline_fit import fit_pipeline

        fitted = fit_pipeline(self.config, dataset, Path(cache), Run.of(run))
        self._take(fitted.state)
        self.fit_failed_ = fitted.failed
        self.training_ = fitted.training
        return self

    def refit(
        self, dataset: Dataset, cache: str | os.PathLike[str] | None = None, *, run: Run | None = None
    ) -> "Pipeline":
        """After `evaluate`, learn again from every training and validation video, keeping the
        evaluation (of the training split's model) and the tier state (`pipeline_fit.refit_pipeline`)."""
        from tiermem.pipeline_fit import refit_pipeline

        if not hasattr(self, "training_"):
            raise TiermemError("refit needs a pipeline fitted in this process: call Pipeline.fit first")
        store = Path(cache) if cache is not None else Path(self.store_dir_)
        state, training = refit_pipeline(self.config, dataset, store, list(self.fit_failed_), Run.of(run))
        state.evaluation = self.evaluation
        self._take(state)
        self.training_ = training
        return self

    # -- inference ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "head_"):
            raise TiermemError("this pipeline is not fitted: run `tiermem fit` or Pipeline.fit first")

    def features(
        self, store_dir: Path | MemoryStore, ids: list[str], *, on_missing: str = "raise"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, head inputs) of videos already in a feature store: tier blocks + distinctiveness."""
        tier_layout = [b for b in self.layout_ if b.name != DISTINCT_BLOCK]
        joined = join_blocks(
            load_tier_blocks(store_dir, self.config.tiers), ids, layout=tier_layout, on_missing=on_missing
        )
        X = joined.X
        if self.distinct_:
            X = np.hstack(
                [X, *[est.transform(X[:, joined.slices[est.source]]) for est in self.distinct_]]
            ).astype(np.float32)
        return joined.ids, X

    def shapley(self, X: np.ndarray):  # -> tiermem.explain.TierShapley
        """Scores of head inputs with each block's exact Shapley contribution."""
        from tiermem.explain import tier_shapley

        return tier_shapley(self.head_.predict, X, BlockLayout.slices(self.layout_), self.baseline_)

    def explain(self, videos: PathInputs, **options: Any) -> pd.DataFrame:
        """Why each video scores what it does: one row per video and block (each tier, then
        distinctiveness) with its exact Shapley contribution, largest first; the contributions of
        a video add up to its score minus `base_score` (the score with every block at the
        training mean). `options` are `predict`'s; a video scored over time is explained by its
        mean over the windows."""
        pred = self.predict(videos, **options)
        blocks = [c.removeprefix("contrib_") for c in pred.table if c.startswith("contrib_")]
        long = pred.table.melt(
            id_vars=["video_id", "score"], value_vars=[f"contrib_{b}" for b in blocks], var_name="block",
            value_name="contribution",
        )  # fmt: skip
        long["block"] = long["block"].str.removeprefix("contrib_")
        long["base_score"] = float(self.head_.predict(self.baseline_[None, :].astype(np.float32))[0])
        order = long.assign(size=long["contribution"].abs()).sort_values(
            ["video_id", "size"], ascending=[True, False]
        )
        return order[["video_id", "block", "contribution", "score", "base_score"]].reset_index(drop=True)

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Percentile (0-100) of scores among the head's predictions on the training videos."""
        return midrank_percentile(self.train_predictions_, scores)

    def predict(
        self,
        videos: PathInputs,
        *,
        cache: str | os.PathLike[str] | None = None,
        captions: dict[str, list[str]] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        run: Run | None = None,
        missing: Literal["raise", "keep"] = "raise",
        timeline: bool | None = None,
        window: float | None = None,
        stride: float | None = None,
    ) -> Predictions:
        """Score raw videos: one path, many paths, or directories (searched recursively).

        A path that does not exist raises an error naming it (``missing="keep"``: it is listed
        in `failed` instead); files that fail to decode are listed in `failed` and the rest
        still get scores. Videos longer than 1.5 windows (`timeline=None`), or all of them
        (`timeline=True`), are scored window by window: `window` seconds long (default: the
        training clips' length), `stride` apart (default: about 1 s); see `tiermem.timeline`.
        `run`: workers, engine and device for clips and timelines alike (`tiermem.run.Run`).
        """
        from tiermem.timeline import predict_with_timelines, wants_timeline

        self._check_fitted()
        if captions and not any(t in TEXT_TIERS for t in self.config.tiers):
            raise TiermemError(
                f"model {self.name} has no text tier: captions do not apply (its tiers: {', '.join(self.config.tiers)})"
            )
        run = Run.of(run)
        paths = find_videos(videos, missing=missing)
        length = window if window is not None else self.window_seconds
        use = wants_timeline(paths, timeline, length, window is not None or stride is not None)
        with run:  # the clips and every long video's stretches share one set of workers
            return predict_with_timelines(
                paths,
                use,
                clips=lambda ps: self._predict_clips(ps, cache, captions, state_dir, run),
                timeline=lambda p: self.timeline(p, window=window, stride=stride, captions=captions, run=run),
                percentile=self.percentile,
            )

    def _predict_clips(
        self,
        paths: list[Path],
        cache: str | os.PathLike[str] | None,
        captions: dict[str, list[str]] | None,
        state_dir: str | os.PathLike[str] | None,
        run: Run,
    ) -> Predictions:
        """Each video scored as one clip (frames spread over the whole file); the features go
        through the `cache` directory when one is given, else they stay in memory."""
        ids = [p.stem for p in paths]  # files sharing an id fail in extraction; the others are scored
        store: Path | MemoryStore = Path(cache) if cache is not None else MemoryStore()
        tier_caps = self._captions(ids, captions) if any(t in TEXT_TIERS for t in self.config.tiers) else None
        report = extract_features(
            paths,
            self.config.tiers,
            store,
            decode=self.config.decode,
            tier_config=self.config.tier_config,
            state=Path(state_dir) if state_dir else self.state_dir,
            captions=tier_caps,
            run=run,
        )
        failed = list(report.failed) if report is not None else []
        bad = {Path(p).stem for p, _ in failed}
        ok_ids = [v for v in ids if v not in bad]
        if not ok_ids:
            return Predictions.empty(failed)
        try:
            scored_ids, X = self.features(store, ok_ids)
        except DataMismatchError as exc:
            raise DataMismatchError(f"model {self.name}: {exc}") from None
        facts = load_facts(store, self.config.tiers, list(scored_ids))
        shap = self.shapley(X)
        path_of = dict(zip(ids, map(str, paths)))
        table = pd.DataFrame(
            {
                "video_id": scored_ids,
                "path": [path_of[v] for v in scored_ids],
                "score": shap.scores,
                "percentile": self.percentile(shap.scores),
            }
        )
        for j, name in enumerate(shap.tier_names):
            table[f"contrib_{name}"] = shap.values[:, j]
        return Predictions(table, shap.as_dicts(), facts, shap.base_score, failed)

    @staticmethod
    def _captions(ids: list[str], captions: dict[str, list[str]] | None) -> dict[str, list[str]]:
        found = {v: (captions or {}).get(v, []) for v in ids}
        lacking = [v for v, c in found.items() if not c]
        if lacking:
            raise TiermemError(
                f"this model uses the text tier: no captions for {len(lacking)} videos ({', '.join(lacking[:3])})"
            )
        return found

    # -- timelines ----------------------------------------------------------------------------
    @property
    def window_seconds(self) -> float:
        """A timeline's default window: the training clips' median length (3 s when unknown)."""
        return getattr(self, "clip_seconds_", None) or 3.0

    def timeline(
        self,
        video: str | os.PathLike[str],
        *,
        window: float | None = None,
        stride: float | None = None,
        captions: dict[str, list[str]] | None = None,
        run: Run | None = None,
    ):  # -> tiermem.timeline.Timeline
        """Memorability over time of one video: every window scored as a clip of its length, the
        tiers' networks on `run`'s device, as for clips."""
        from tiermem.timeline import build_timeline

        self._check_fitted()
        run = Run.of(run)
        text = self._caption_features(Path(video), captions, run)
        return build_timeline(
            Path(video),
            tiers=self.fitted_tiers(run),
            decode=self.config.decode,
            length=window if window is not None else self.window_seconds,
            stride=stride,
            length_given=window is not None,
            score=lambda f: self.score_windows(f.values, text),
            training_median=float(np.median(self.train_predictions_)),
            run=run,
            store=str(self.state_dir),
        )

    def heatmap(
        self,
        video: str | os.PathLike[str],
        t: float,
        *,
        grid: int = 5,
        window: float | None = None,
        captions: dict[str, list[str]] | None = None,
        run: Run | None = None,
    ):  # -> tiermem.heatmap.Heatmap
        """Where in the frame the score of the window around `t` seconds comes from: occlusion
        of a `grid` x `grid` lattice, the frame tiers recomputed (`tiermem.heatmap`)."""
        from tiermem.heatmap import heatmap_for

        self._check_fitted()
        run = Run.of(run)
        text = self._caption_features(Path(video), captions, run)
        return heatmap_for(
            video,
            t,
            tiers=self.fitted_tiers(run),
            decode_options=self.config.decode,
            length=window if window is not None else self.window_seconds,
            score=lambda values: self.score_windows(values, text)["score"].to_numpy(),
            grid=grid,
        )

    # -- windows: frames scored without a feature store (timelines, heatmaps) ------------------
    def fitted_tiers(self, run: Run | None = None) -> dict[str, Tier]:
        """The frame tiers with their fitted state, built once; their networks on `run`'s device."""
        self._check_fitted()
        if self._tiers is None:
            from tiermem.tiers import get_tier

            tiers = {}
            for name in frame_tiers(self.config.tiers):
                tier = get_tier(name, **self.config.tier_config.get(name, {}))
                if tier.requires_fit:
                    saved = FeatureStore(self.state_dir).load_state(name)
                    if saved is None:
                        raise TiermemError(
                            f"model {self.name}: no fitted state for the {name} tier in {self.state_dir}"
                        )
                    saved.apply(tier)
                tiers[name] = tier
            self._tiers = tiers
        device = Run.of(run).device_for(self._tiers.values())
        for tier in self._tiers.values():
            if tier.uses_device:
                tier.on(device)
        return self._tiers

    def score_windows(self, values: dict[str, np.ndarray], text: np.ndarray | None = None) -> pd.DataFrame:
        """Scores, percentiles and Shapley contributions of windows from their tier features
        ({tier: (n, d)}; `text`: the video's caption features when the model has the text tier)."""
        n = len(next(iter(values.values())))
        parts = []
        for block in self.layout_:
            if block.name == DISTINCT_BLOCK:
                continue
            part = (
                values[block.name]
                if block.name in values
                else np.repeat(np.asarray(text, np.float32), n, axis=0)
            )
            if part.shape[1] != len(block.feature_names):
                raise DataMismatchError(
                    f"model {self.name}: the {block.name} tier gives {part.shape[1]} features, the head expects {len(block.feature_names)}"
                )
            parts.append(part)
        X = np.hstack(parts).astype(np.float32)
        if self.distinct_:
            cols = BlockLayout.slices(self.layout_)
            X = np.hstack([X, *[est.transform(X[:, cols[est.source]]) for est in self.distinct_]]).astype(
                np.float32
            )
        shap = self.shapley(X)
        table = pd.DataFrame({"score": shap.scores, "percentile": self.percentile(shap.scores)})
        for j, name in enumerate(shap.tier_names):
            table[f"contrib_{name}"] = shap.values[:, j]
        return table

    def _caption_features(
        self, path: Path, captions: dict[str, list[str]] | None, run: Run
    ) -> np.ndarray | None:
        """The video's caption features, embedded once, when the model has the text tier."""
        if "text" not in self.config.tiers:
            return None
        from tiermem.tiers import get_tier

        caps = self._captions([path.stem], captions)[path.stem]
        return (
            get_tier("text", **self.config.tier_config.get("text", {}))
            .on(run.network_device)
            .transform_texts([caps])
        )

    def card(self) -> dict[str, Any]:
        """What this model was trained on, how well it did, what it runs (`tiermem.card`)."""
        from tiermem.card import pipeline_card

        return pipeline_card(self)

    @property
    def name(self) -> str:
        """How messages name this model: its artifact directory, once saved or loaded."""
        return getattr(self, "artifact_dir_", "the fitted pipeline (not saved)")

    # -- evaluation and persistence ----------------------------------------------------------
    def evaluate(
        self,
        dataset: Dataset,
        cache: str | os.PathLike[str] | None = None,
        *,
        ablate: bool | None = None,
        run: Run | None = None,
    ) -> PipelineEvaluation:
        """Evaluate this pipeline, just fitted on `dataset`, on its validation and test splits
        (`tiermem.evaluation.evaluate_pipeline`); the evaluation is kept and saved with the model."""
        from tiermem.evaluation import evaluate_pipeline

        self.evaluation = evaluate_pipeline(self, dataset, cache, ablate=ablate, run=run)
        return self.evaluation

    def state(self) -> PipelineState:
        """What this fitted pipeline keeps, as `tiermem.artifact` saves it."""
        self._check_fitted()
        return PipelineState(
            config=self.config,
            layout=list(self.layout_),
            head=self.head_,
            distinct=list(self.distinct_),
            baseline=self.baseline_,
            train_predictions=self.train_predictions_,
            train_scores=self.train_scores_,
            clip_seconds=self.clip_seconds_,
            dataset_name=self.dataset_name_,
            tier_state=self.state_dir,
            evaluation=self.evaluation,
            saved_at=Path(self.artifact_dir_) if hasattr(self, "artifact_dir_") else None,
        )

    @classmethod
    def from_state(cls, state: PipelineState) -> "Pipeline":
        """A fitted pipeline from its parts (`state()` reversed)."""
        pipe = cls(state.config)
        pipe._take(state)
        return pipe

    def _take(self, state: PipelineState) -> None:
        self.layout_ = list(state.layout)
        self.head_ = state.head
        self.distinct_ = list(state.distinct)
        self.baseline_ = state.baseline
        self.train_predictions_ = state.train_predictions
        self.train_scores_ = state.train_scores
        self.clip_seconds_ = state.clip_seconds
        self.dataset_name_ = state.dataset_name
        self.evaluation = state.evaluation
        if state.saved_at is not None:
            self.artifact_dir_ = str(state.saved_at)
        else:
            self.store_dir_ = str(state.tier_state)

    def save(self, out: str | os.PathLike[str]) -> Path:
        """Write the artifact directory atomically, with the evaluation when there is one."""
        return save_state(self.state(), Path(out))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Pipeline":
        """Read an artifact directory; refuses unknown schema versions and damaged files."""
        return cls.from_state(load_state(Path(path)))

    @property
    def state_dir(self) -> Path:
        """Where this pipeline's fitted tier state lives: the artifact's tiers/, or the fit's cache."""
        if hasattr(self, "artifact_dir_"):
            return Path(self.artifact_dir_) / "tiers"
        return Path(self.store_dir_)


__all__ = ["DISTINCT_BLOCK", "Pipeline", "PipelineConfig"]

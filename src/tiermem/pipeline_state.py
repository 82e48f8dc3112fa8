"""What a fitted pipeline keeps, as plain data: the boundary between `Pipeline` and its artifact.

`Pipeline.state()` gathers a `PipelineState`, `tiermem.artifact` writes one to a directory and
reads one back, and `Pipeline.from_state()` turns it into a pipeline again, so only
`tiermem.pipeline` sets a pipeline's attributes. `PipelineEvaluation` is the evaluation saved
beside the model (`tiermem.evaluation` computes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiermem.blocks import BlockLayout
from tiermem.pipeline_config import PipelineConfig


@dataclass
class PipelineEvaluation:
    """Figures and examples of one evaluation.

    - `metrics`: n_train, n_val (n_test), the val (test) metrics as dicts, failed, dropped, and
      `validation`: the validation figure under both protocols (`tiermem.model.protocols`);
    - `predictions`: validation videos with video_id, path, true, score, contrib_<block>;
    - `facts`: what the tiers saw in each validation video, in the same order;
    - `ablation`: one row per tier set and head (None when not run);
    - `maps`: block -> (2-D t-SNE coordinates, scores).
    """

    metrics: dict[str, Any]
    predictions: pd.DataFrame
    facts: list[dict[str, Any]]
    ablation: pd.DataFrame | None = None
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class PipelineState:
    """A fitted pipeline's parts.

    - `layout`: the head's input blocks in order (the tiers, then distinctiveness);
    - `head`: the fitted head (`tiermem.model`); `distinct`: the fitted distinctiveness contexts;
    - `baseline`: the mean training input (the Shapley baseline);
    - `train_predictions`, `train_scores`: the head's scores and the labels of the training
      videos, sorted (percentiles);
    - `clip_seconds`: the training clips' median length (a timeline's window), None if unknown;
    - `tier_state`: the directory holding the tiers' fitted state files (the fit's feature
      store, or a saved model's ``tiers/``);
    - `saved_at`: the artifact directory it was read from (None: not saved yet).
    """

    config: PipelineConfig
    layout: list[BlockLayout]
    head: Any
    distinct: list[Any]
    baseline: np.ndarray
    train_predictions: np.ndarray
    train_scores: np.ndarray
    clip_seconds: float | None
    dataset_name: str | None
    tier_state: Path
    evaluation: PipelineEvaluation | None = None
    saved_at: Path | None = None


__all__ = ["PipelineEvaluation", "PipelineState"]

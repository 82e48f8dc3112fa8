"""`Model`: what every model `tiermem.load` returns offers, whatever it reads.

Three kinds implement it: the fitted pipeline (`tiermem.pipeline.Pipeline`), the zero-shot frame
prior (`tiermem.zero_shot.ZeroShotModel`) and the text models (`tiermem.models.text.TextModel`).
Each scores videos with `predict` and describes itself with `card`; a model that reads frames
is also a `FrameModel`, with a `timeline` over a whole video and a `heatmap` of where in the
frame a window's score comes from, and a model whose score splits into parts (the fitted
pipeline's tiers) is `Explainable`: load, predict, explain. An argument a model cannot honour (captions for a model that
reads frames only, a timeline for one that reads captions) is refused in one line.

    >>> import tiermem
    >>> from tiermem.models.protocol import FrameModel, Model
    >>> isinstance(tiermem.load("zero-shot"), FrameModel)
    True
    >>> isinstance(tiermem.load("memento10k-captions"), FrameModel), isinstance(tiermem.load("memento10k-captions"), Model)
    (False, True)
"""

from __future__ import annotations

import os
from typing import Any, Literal, Protocol, runtime_checkable

from tiermem.inputs import PathInputs
from tiermem.predictions import Predictions
from tiermem.run import Run


@runtime_checkable
class Model(Protocol):
    """Scores videos and says what it is."""

    name: str

    def predict(
        self,
        videos: PathInputs,
        *,
        cache: str | os.PathLike[str] | None = None,
        captions: dict[str, list[str]] | None = None,
        run: Run | None = None,
        missing: Literal["raise", "keep"] = "raise",
        timeline: bool | None = None,
        window: float | None = None,
        stride: float | None = None,
    ) -> Predictions:
        """Score one path, many, or directories: a `Predictions` table (score, percentile,
        contributions where the model has them) plus the files that failed."""
        ...

    def card(self) -> dict[str, Any]:
        """What the model was trained on, how well it did, what it runs, under which licences."""
        ...


@runtime_checkable
class Explainable(Model, Protocol):
    """A model whose scores split into parts: the fitted pipeline's blocks (tiers, distinctiveness)."""

    def explain(self, videos: PathInputs, **options: Any) -> Any:
        """One row per video and part with its exact Shapley contribution (a `pandas.DataFrame`:
        video_id, block, contribution, score, base_score); `options` are `predict`'s."""
        ...


@runtime_checkable
class FrameModel(Model, Protocol):
    """A model that reads frames: it also scores a video over time and maps a window's score."""

    def timeline(
        self,
        video: str | os.PathLike[str],
        *,
        window: float | None = None,
        stride: float | None = None,
        run: Run | None = None,
    ) -> Any:
        """Memorability over time (`tiermem.timeline.Timeline`)."""
        ...

    def heatmap(
        self,
        video: str | os.PathLike[str],
        t: float,
        *,
        grid: int = 5,
        window: float | None = None,
        run: Run | None = None,
    ) -> Any:
        """Where in the frame the score of the window around `t` seconds comes from (`tiermem.heatmap.Heatmap`)."""
        ...


__all__ = ["Explainable", "FrameModel", "Model"]

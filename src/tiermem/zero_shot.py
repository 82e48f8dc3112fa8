"""Scoring without a video-trained model: the mean ResMem image memorability of a few frames.

`tiermem.load("zero-shot")` returns a `ZeroShotModel`; it predicts like a fitted pipeline
(one path, many, or directories; the same arguments and the same `Predictions`), so the
command line and notebooks take one code path. The percentile is within the videos scored
together, since no training corpus exists (none for a single video), and there are no tier
contributions: the score is a frame prior.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from tiermem.errors import TiermemError
from tiermem.extraction import extract_videos
from tiermem.features import load_facts, load_tier_blocks
from tiermem.inputs import PathInputs, find_videos
from tiermem.metrics import midrank_percentile
from tiermem.predictions import Predictions
from tiermem.run import Run
from tiermem.store_memory import MemoryStore

#: ResMem scores one frame per forward pass here: a batch of 10 frames held ~100 MB more
#: activations, which set the peak of a one-off prediction; bulk extraction keeps batches.
ONE_FRAME_AT_A_TIME = {"prior": {"batch_size": 1}}


class ZeroShotModel:
    """The prior tier's mean frame memorability (ResMem, non-commercial licence) as the score."""

    name = "zero-shot"
    description = (
        "zero-shot memorability (ResMem frame prior; no video-trained model: run `tiermem fit` for one)"
    )

    def __init__(
        self,
        frames: int = 5,
        size: int = 256,
        precision: str = "fp32",
        reference: str | os.PathLike[str] | None = None,
    ) -> None:
        """`frames` decoded per video: the prior scores 5 evenly spaced frames, and decoding 5
        gives exactly the frames it would pick from 45 (segment centres), at a ninth of the work.
        `precision="bf16"` runs ResMem under bfloat16 autocast: about 1.5x faster on CPUs with
        bfloat16 units, scores within ~2e-3 of float32 (the default, the same on every CPU).
        `reference`: a predictions CSV of this model on videos that set the norm (what
        ``tiermem predict --out`` writes): each percentile is then against those videos, a
        single video's too; without one it is within the videos scored together."""
        if precision not in ("fp32", "bf16"):
            raise TiermemError(f"zero-shot: precision must be fp32 or bf16, got {precision!r}")
        self.frames = frames
        self.size = size
        self.precision = precision
        self.reference = None if reference is None else str(reference)
        self.window_seconds = 3.0  # Memento10k's clip length, on which the prior scores clips
        self._tiers: dict[str, Any] | None = None
        #: The reference videos' scores, sorted (None without a reference).
        self.reference_scores = read_reference_scores(Path(reference)) if reference is not None else None

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
        """Score videos as `Pipeline.predict` does; `captions` are refused (the prior reads frames only).

        A missing path raises an error naming it (``missing="keep"``: it goes to `failed`);
        files that fail to decode go to `failed` and the others are scored. Long videos get a
        timeline of `window`-second windows (default 3 s, the Memento10k clip length).
        """
        from tiermem.timeline import predict_with_timelines, wants_timeline

        if captions:
            raise TiermemError(
                f"model {self.name} reads frames only: captions do not apply (a text model scores them)"
            )
        run = Run.of(run)
        paths = find_videos(videos, missing=missing)
        length = window if window is not None else self.window_seconds
        with run:  # the clips and every long video's stretches share one set of workers
            pred = predict_with_timelines(
                paths,
                wants_timeline(paths, timeline, length, window is not None or stride is not None),
                clips=lambda ps: self._predict_clips(ps, cache, run),
                timeline=lambda p: self.timeline(p, window=window, stride=stride, run=run),
                percentile=None,
            )
        scores = pred.table["score"].to_numpy(dtype=np.float64)
        if self.reference_scores is not None:
            pred.table["percentile"] = midrank_percentile(self.reference_scores, scores)
        else:  # within the videos scored together: a single video has no rank to speak of
            pred.table["percentile"] = (
                midrank_percentile(np.sort(scores), scores) if len(scores) > 1 else np.nan
            )
        return pred

    def timeline(
        self,
        video: str | os.PathLike[str],
        *,
        window: float | None = None,
        stride: float | None = None,
        run: Run | None = None,
    ):  # -> tiermem.timeline.Timeline
        """Zero-shot memorability over time: the frame prior of every window, on `run`'s device."""
        from tiermem.timeline import build_timeline

        return build_timeline(
            Path(video),
            tiers=self._prior(Run.of(run)),
            decode=self._decode,
            length=window if window is not None else self.window_seconds,
            stride=stride,
            length_given=window is not None,
            training_median=None,
            score=lambda f: pd.DataFrame({"score": f.values["prior"][:, 0].astype(np.float64)}),
            run=Run.of(run),
        )

    def heatmap(
        self,
        video: str | os.PathLike[str],
        t: float,
        *,
        grid: int = 5,
        window: float | None = None,
        run: Run | None = None,
    ):  # -> tiermem.heatmap.Heatmap
        """Where in the frame the prior's score of the window around `t` seconds comes from
        (occlusion of a `grid` x `grid` lattice, `tiermem.heatmap`)."""
        from tiermem.heatmap import heatmap_for

        return heatmap_for(
            video,
            t,
            tiers=self._prior(Run.of(run)),
            decode_options=self._decode,
            length=window if window is not None else self.window_seconds,
            score=lambda values: values["prior"][:, 0].astype(np.float64),
            grid=grid,
        )

    def card(self) -> dict[str, Any]:
        """What this model is and is not (`tiermem.card`): a frame prior, with no training data."""
        from tiermem.card import zero_shot_card

        return zero_shot_card(self)

    @property
    def _decode(self) -> dict[str, Any]:
        return {"frames": self.frames, "size": self.size, "mode": "stretch"}

    def _prior(self, run: Run) -> dict[str, Any]:
        """The prior tier, built once, its network on `run`'s device."""
        from tiermem.tiers import get_tier

        if self._tiers is None:
            self._tiers = {
                "prior": get_tier("prior", frames_k=self.frames, batch_size=8, precision=self.precision)
            }
        self._tiers["prior"].on(run.network_device)
        return self._tiers

    def _predict_clips(
        self,
        paths: list[Path],
        cache: str | os.PathLike[str] | None,
        run: Run,
    ) -> Predictions:
        """Each video's frame prior as one clip; through the `cache` directory when one is given,
        else in memory."""
        store: Path | MemoryStore = Path(cache) if cache is not None else MemoryStore()
        report = extract_videos(
            paths,
            tiers=["prior"],
            out=store,
            frames=self.frames,
            size=self.size,
            tier_config={"prior": {**ONE_FRAME_AT_A_TIME["prior"], "precision": self.precision}},
            run=run,
        )
        failed = {Path(p).stem for p, _ in report.failed}
        ids = list(dict.fromkeys(p.stem for p in paths if p.stem not in failed))
        if not ids:
            return Predictions.empty(list(report.failed), zero_shot=True)
        block = load_tier_blocks(store, ["prior"])[0]
        row = {v: i for i, v in enumerate(block.ids)}
        scores = block.values[[row[v] for v in ids], block.feature_names.index("prior_mean")].astype(
            np.float64
        )
        path_of = {p.stem: str(p) for p in paths}
        out = pd.DataFrame(
            {"video_id": ids, "path": [path_of[v] for v in ids], "score": scores, "percentile": np.nan}
        )
        facts = load_facts(store, ["prior"], ids)
        return Predictions(out, [], facts, None, list(report.failed), zero_shot=True)


def read_reference_scores(path: Path) -> np.ndarray:
    """The sorted video scores of a predictions CSV (a video scored over time: its mean over
    the windows, as its own row gives it); refused in one line unless it holds at least 2."""
    try:
        table = pd.read_csv(path, usecols=["video_id", "score"], dtype={"video_id": str})
        scores = table.groupby("video_id", sort=False)["score"].mean().to_numpy(dtype=np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise TiermemError(f"{path}: not a predictions CSV with video_id and score columns ({exc})") from None
    if len(scores) < 2 or not np.isfinite(scores).all():
        raise TiermemError(
            f"{path}: a reference needs the finite scores of at least 2 videos, found {len(scores)}"
        )
    return np.sort(scores)


__all__ = ["ZeroShotModel", "read_reference_scores"]

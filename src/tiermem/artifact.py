"""A fitted pipeline on disk: one directory, and loading it executes no code.

    pipeline.json          schema version, config, library versions, blocks, evaluation figures
    tiers/<tier>.state.npz fitted tier state (e.g. the low tier's HOG PCA), as the feature store saves it
    distinct/<method>.npz  fitted distinctiveness contexts
    head/                  the head (head.json + weights.safetensors)
    arrays.npz             training predictions (percentiles), Shapley baseline, t-SNE maps
    evaluation/            validation predictions, their facts and the tier ablation (CSV, JSON)

JSON, npz read with ``allow_pickle=False`` and safetensors only. The directory is built beside
its destination and swapped into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tiermem.atomic import write_dir_atomic
from tiermem.blocks import BlockLayout
from tiermem.errors import TiermemError
from tiermem.runtime import library_versions
from tiermem.store import FeatureStore

if TYPE_CHECKING:
    from tiermem.pipeline import Pipeline

ARTIFACT_SCHEMA = 1
META_FILE = "pipeline.json"


def save_pipeline(pipe: "Pipeline", out: Path) -> Path:
    """Write `pipe` (and its evaluation, when it has one) to the directory `out`, atomically."""
    return write_dir_atomic(out, lambda d: _write(pipe, d))


def _write(pipe: "Pipeline", d: Path) -> None:
    store = FeatureStore(pipe.state_dir)
    (d / "tiers").mkdir()
    for tier in pipe.config.tiers:
        src = store.state_path(tier)
        if src.exists():
            shutil.copy2(src, d / "tiers" / src.name)
    (d / "distinct").mkdir()
    for est in pipe.distinct_:
        est.save(d / "distinct" / f"{est.method}.npz")
    pipe.head_.save(d / "head")
    arrays = {"baseline": pipe.baseline_, "train_predictions": pipe.train_predictions_,
              "train_scores": pipe.train_scores_}
    ev = pipe.evaluation
    maps = ev.maps if ev is not None else {}
    for name, (xy, colour) in maps.items():
        arrays[f"map_{name}_xy"] = xy
        arrays[f"map_{name}_colour"] = colour
    np.savez(d / "arrays.npz", **arrays)
    if ev is not None:
        (d / "evaluation").mkdir()
        ev.predictions.to_csv(d / "evaluation" / "val_predictions.csv", index=False)
        (d / "evaluation" / "val_facts.json").write_text(json.dumps(ev.facts))
        if ev.ablation is not None:
            ev.ablation.to_csv(d / "evaluation" / "ablation.csv", index=False)
    meta = {
        "schema_version": ARTIFACT_SCHEMA,
        "kind": "tiermem.pipeline",
        "versions": library_versions(),
        "config": asdict(pipe.config),
        "layout": [b.to_dict() for b in pipe.layout_],
        "distinct": [est.method for est in pipe.distinct_],
        "maps": sorted(maps),
        "evaluation": ev.metrics if ev is not None else None,
    }
    (d / META_FILE).write_text(json.dumps(meta, indent=2))


def load_pipeline(d: Path, make: Callable[[dict[str, Any]], "Pipeline"]) -> "Pipeline":
    """Read an artifact directory into `make(config)`; unknown schema versions and damaged
    files are refused in one line."""
    meta_path = d / META_FILE
    if not meta_path.exists():
        raise TiermemError(f"{d}: not a tiermem model (no {META_FILE})")
    try:
        return _read(d, meta_path, make)
    except TiermemError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise TiermemError(f"{d}: not a readable tiermem model ({type(exc).__name__}: {exc})") from None


def _read(d: Path, meta_path: Path, make: Callable[[dict[str, Any]], "Pipeline"]) -> "Pipeline":
    from tiermem.distinctiveness.base import Distinctiveness
    from tiermem.evaluation import PipelineEvaluation
    from tiermem.model.base import load_head

    meta = json.loads(meta_path.read_text())
    if meta.get("schema_version") != ARTIFACT_SCHEMA:
        raise TiermemError(
            f"{meta_path}: schema version {meta.get('schema_version')} (this tiermem reads {ARTIFACT_SCHEMA})"
        )
    pipe = make(meta["config"])
    pipe.layout_ = [BlockLayout.from_dict(b) for b in meta["layout"]]
    pipe.distinct_ = [Distinctiveness.load(d / "distinct" / f"{m}.npz") for m in meta["distinct"]]
    pipe.head_ = load_head(d / "head")
    with np.load(d / "arrays.npz", allow_pickle=False) as arrays:
        pipe.baseline_ = arrays["baseline"]
        pipe.train_predictions_ = arrays["train_predictions"]
        pipe.train_scores_ = arrays["train_scores"]
        maps = {m: (arrays[f"map_{m}_xy"], arrays[f"map_{m}_colour"]) for m in meta["maps"]}
    if meta.get("evaluation") is not None:
        ev_dir = d / "evaluation"
        ablation = ev_dir / "ablation.csv"
        pipe.evaluation = PipelineEvaluation(
            metrics=meta["evaluation"],
            predictions=pd.read_csv(ev_dir / "val_predictions.csv", dtype={"video_id": str}),
            facts=json.loads((ev_dir / "val_facts.json").read_text()),
            ablation=pd.read_csv(ablation) if ablation.exists() else None,
            maps=maps,
        )
    pipe.artifact_dir_ = str(d)
    return pipe


__all__ = ["ARTIFACT_SCHEMA", "META_FILE", "load_pipeline", "save_pipeline"]

"""A fitted pipeline on disk: one directory, and loading it executes no code.

    pipeline.json          schema version, config, library versions, blocks, evaluation figures,
                           the training clips' median length (the timeline's window)
    tiers/<tier>.state.npz fitted tier state (e.g. the low tier's HOG PCA), as the feature store saves it
    distinct/<method>.npz  fitted distinctiveness contexts
    head/                  the head (head.json + weights.safetensors)
    arrays.npz             training predictions (percentiles), Shapley baseline, t-SNE maps
    evaluation/            validation predictions, their facts and the tier ablation (CSV, JSON)

JSON, npz read with ``allow_pickle=False`` and safetensors only, each checked against the
config and the layout when read. The directory is built beside its destination and swapped
into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiermem.atomic import before_loading, write_dir_atomic
from tiermem.blocks import DISTINCT_BLOCK, BlockLayout
from tiermem.errors import ArtifactError, TiermemError
from tiermem.pipeline_config import PipelineConfig
from tiermem.pipeline_state import PipelineEvaluation, PipelineState
from tiermem.runtime import library_versions
from tiermem.store import FeatureStore

ARTIFACT_SCHEMA = 1
META_FILE = "pipeline.json"


def save_state(state: PipelineState, out: Path) -> Path:
    """Write a fitted pipeline's `state` (and its evaluation, when it has one) to the directory `out`, atomically."""
    return write_dir_atomic(out, lambda d: _write(state, d), marker=META_FILE)


def _write(state: PipelineState, d: Path) -> None:
    store = FeatureStore(state.tier_state)
    (d / "tiers").mkdir()
    for tier in state.config.tiers:
        src = store.state_path(tier)
        if src.exists():
            shutil.copy2(src, d / "tiers" / src.name)
    (d / "distinct").mkdir()
    for est in state.distinct:
        est.save(d / "distinct" / state.config.distinct_file(est.name, est.source))
    state.head.save(d / "head")
    arrays = {
        "baseline": state.baseline,
        "train_predictions": state.train_predictions,
        "train_scores": state.train_scores,
    }
    ev = state.evaluation
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
        "config": asdict(state.config),
        "layout": [b.to_dict() for b in state.layout],
        "distinct": list(dict.fromkeys(est.name for est in state.distinct)),
        "maps": sorted(maps),
        "evaluation": ev.metrics if ev is not None else None,
        "clip_seconds": state.clip_seconds,
        "dataset": state.dataset_name,
    }
    (d / META_FILE).write_text(json.dumps(meta, indent=2))


def load_state(d: Path) -> PipelineState:
    """Read an artifact directory into a `PipelineState`.

    Unknown schema versions, damaged files and parts that do not fit together (a head trained
    on other blocks, arrays of the wrong shape, NaN) are refused in one line naming the file.
    """
    before_loading(d, META_FILE)
    meta_path = d / META_FILE
    if not meta_path.exists():
        raise TiermemError(f"{d}: not a tiermem model (no {META_FILE})")
    with _reading(meta_path):
        meta = _json(meta_path, dict)
        if meta.get("schema_version") != ARTIFACT_SCHEMA:
            raise TiermemError(
                f"{meta_path}: schema version {meta.get('schema_version')} (this tiermem reads {ARTIFACT_SCHEMA})"
            )
        try:
            cfg = PipelineConfig.from_dict(meta["config"])
        except TiermemError as exc:
            raise ArtifactError(f"{meta_path}: config: {exc}") from None
        layout = [BlockLayout.from_dict(b) for b in _field(meta, "layout", list, meta_path)]
        distinct = [str(m) for m in _field(meta, "distinct", list, meta_path)]
        maps = [str(m) for m in _field(meta, "maps", list, meta_path)]
        clip_seconds = meta.get("clip_seconds")  # absent from models saved before timelines existed
        if clip_seconds is not None and not (
            isinstance(clip_seconds, (int, float)) and 0 < clip_seconds < 1e6
        ):
            raise ArtifactError(f"{meta_path}: 'clip_seconds' must be a positive number of seconds or null")
        dataset = meta.get("dataset")  # the training set's name; absent from older models
        if dataset is not None and not isinstance(dataset, str):
            raise ArtifactError(f"{meta_path}: 'dataset' must be a name or null")
        evaluation = meta.get("evaluation")
        if evaluation is not None and not isinstance(evaluation, dict):
            raise ArtifactError(f"{meta_path}: 'evaluation' must be a JSON object or null")
    blocks = cfg.tiers + ([DISTINCT_BLOCK] if cfg.distinct else [])
    if [b.name for b in layout] != blocks or distinct != cfg.distinct:
        raise ArtifactError(
            f"{meta_path}: layout ({', '.join(b.name for b in layout)}) and distinctiveness "
            f"({', '.join(distinct) or 'none'}) do not match the config's tiers and methods"
        )
    from tiermem.tiers import get_tier

    for block in layout[: len(cfg.tiers)]:  # features whose definition has changed since
        why = get_tier(block.name, **cfg.tier_config.get(block.name, {})).check_saved_features(
            block.feature_names
        )
        if why:
            raise ArtifactError(f"{meta_path}: {why}")
    head, contexts = _read_head_and_contexts(d, cfg, layout)
    path = d / "arrays.npz"
    with _reading(path), np.load(path, allow_pickle=False) as arrays:
        baseline = _finite(arrays, "baseline", path, (head.n_features_in_,))
        train_predictions = _finite(arrays, "train_predictions", path, (None,))
        if train_predictions.size == 0:
            raise ArtifactError(
                f"{path}: array 'train_predictions' is empty (percentiles need the training scores)"
            )
        train_scores = _finite(arrays, "train_scores", path, (None,))
        map_arrays = {
            m: (
                _finite(arrays, f"map_{m}_xy", path, (None, 2)),
                _finite(arrays, f"map_{m}_colour", path, (None,)),
            )
            for m in maps
        }
    return PipelineState(
        config=cfg,
        layout=layout,
        head=head,
        distinct=contexts,
        baseline=baseline,
        train_predictions=train_predictions,
        train_scores=train_scores,
        clip_seconds=float(clip_seconds) if clip_seconds is not None else None,
        dataset_name=dataset,
        tier_state=d / "tiers",
        evaluation=_read_evaluation(d / "evaluation", evaluation, map_arrays)
        if evaluation is not None
        else None,
        saved_at=d,
    )


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any failure to read or make sense of `path` into one line naming it."""
    try:
        yield
    except TiermemError:
        raise
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
    ) as exc:  # JSONDecodeError and pandas' parse errors are ValueErrors
        raise ArtifactError(
            f"{path}: damaged or not part of a tiermem model ({type(exc).__name__}: {exc})"
        ) from None


def _json(path: Path, kind: type) -> Any:
    doc = json.loads(path.read_text())
    if not isinstance(doc, kind):
        raise ArtifactError(
            f"{path}: expected a JSON {_JSON_NAMES[kind]}, found {_JSON_NAMES.get(type(doc), type(doc).__name__)}"
        )
    return doc


def _field(meta: dict[str, Any], key: str, kind: type, path: Path) -> Any:
    value = meta.get(key)
    if not isinstance(value, kind):
        raise ArtifactError(f"{path}: {key!r} must be a JSON {_JSON_NAMES[kind]}, found {value!r}")
    return value


def _finite(arrays: Any, key: str, path: Path, shape: tuple[int | None, ...]) -> np.ndarray:
    """`arrays[key]` as float64, refused unless its shape matches (None: any length) and it is finite."""
    a = np.asarray(arrays[key], dtype=np.float64)
    if a.ndim != len(shape) or any(want is not None and got != want for got, want in zip(a.shape, shape)):
        shown = (
            "("
            + ", ".join("N" if n is None else str(n) for n in shape)
            + ("," if len(shape) == 1 else "")
            + ")"
        )
        raise ArtifactError(f"{path}: array {key!r}: expected shape {shown}, found {a.shape}")
    if not np.isfinite(a).all():
        raise ArtifactError(f"{path}: array {key!r} holds {int((~np.isfinite(a)).sum())} NaN/inf values")
    return a


def _read_head_and_contexts(d: Path, cfg: PipelineConfig, layout: list[BlockLayout]) -> tuple[Any, list[Any]]:
    """The head and the distinctiveness contexts, each checked against the layout."""
    from tiermem.distinctiveness.base import Distinctiveness
    from tiermem.model.base import CONFIG_FILE, load_head

    head = load_head(d / "head")
    if head.layout_ != layout:
        raise ArtifactError(
            f"{d / 'head' / CONFIG_FILE}: the head's blocks and columns differ from {META_FILE}'s layout"
        )
    width = {b.name: len(b.feature_names) for b in layout}
    contexts = []
    for method, source, _ in cfg.distinct_contexts():
        path = d / "distinct" / cfg.distinct_file(method, source)
        est = Distinctiveness.load(path)
        if est.name != method or est.source != source or est.n_features_in_ != width.get(est.source):
            raise ArtifactError(
                f"{path}: a {est.name} context of {est.n_features_in_} {est.source} features; the model "
                f"uses {method} on its {width.get(source)} {source} features"
            )
        contexts.append(est)
    if cfg.distinct and sum(len(est.feature_names) for est in contexts) != width[DISTINCT_BLOCK]:
        raise ArtifactError(
            f"{d / 'distinct'}: the contexts give other features than the layout's {DISTINCT_BLOCK!r} block"
        )
    return head, contexts


def _read_evaluation(ev_dir: Path, metrics: dict[str, Any], maps: dict[str, Any]) -> PipelineEvaluation:
    files = {name: ev_dir / name for name in ("val_predictions.csv", "val_facts.json", "ablation.csv")}
    with _reading(files["val_predictions.csv"]):
        predictions = pd.read_csv(files["val_predictions.csv"], dtype={"video_id": str})
    with _reading(files["val_facts.json"]):
        facts = _json(files["val_facts.json"], list)
    ablation = None
    if files["ablation.csv"].exists():
        with _reading(files["ablation.csv"]):
            ablation = pd.read_csv(files["ablation.csv"])
    return PipelineEvaluation(
        metrics=metrics, predictions=predictions, facts=facts, ablation=ablation, maps=maps
    )


_JSON_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


__all__ = ["ARTIFACT_SCHEMA", "META_FILE", "load_state", "save_state"]

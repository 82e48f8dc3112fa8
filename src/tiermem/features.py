"""The pipeline's view of the feature store: extract a model's tiers, read them back as blocks.

Frame tiers are extracted from already resolved video files (`tiermem.inputs.find_videos`
runs once per call, in the caller); the text tier embeds captions instead of pixels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tiermem.blocks import Block, load_block
from tiermem.datasets.record import Dataset
from tiermem.errors import DataMismatchError, TiermemError
from tiermem.extraction import ExtractReport, extract_videos
from tiermem.run import Run
from tiermem.store import FeatureStore
from tiermem.store_memory import MemoryStore

#: Tiers whose input is text rather than frames: they need captions at fit and predict time.
TEXT_TIERS = ("text",)


def frame_tiers(tiers: Sequence[str]) -> list[str]:
    """The tiers among `tiers` that read video frames."""
    return [t for t in tiers if t not in TEXT_TIERS]


def extract_features(
    paths: Sequence[Path],
    tiers: Sequence[str],
    store_dir: Path | MemoryStore,
    *,
    decode: Mapping[str, Any],
    tier_config: Mapping[str, Mapping[str, Any]] | None = None,
    state: Path | None = None,
    captions: dict[str, list[str]] | None = None,
    run: Run | None = None,
) -> ExtractReport | None:
    """Extract the frame tiers of `paths` and the text tier of `captions` into one store (a
    directory, or a `MemoryStore` whose rows the caller reads back from memory).

    `decode` holds the frame sampling (``frames``, ``size``, ``mode``) the model was fitted with.
    """
    report = None
    if frame_tiers(tiers) and len(paths):
        report = extract_videos(
            list(paths),
            tiers=frame_tiers(tiers),
            out=store_dir,
            tier_config=tier_config,
            state=state,
            run=run,
            **decode,
        )
    if any(t in TEXT_TIERS for t in tiers):
        if not captions:
            raise TiermemError("the text tier needs captions (give a captions CSV)")
        from tiermem.tiers.text import embed_captions

        run = Run.of(run)
        embed_captions(
            captions,
            store_dir,
            source="dataset captions",
            device=run.network_device,
            on_progress=run.on_progress,
        )
    return report


def load_tier_blocks(store_dir: Path | MemoryStore, tiers: Sequence[str]) -> list[Block]:
    """One block per tier from the store's Parquet tables (or from the rows a `MemoryStore` holds)."""
    if isinstance(store_dir, MemoryStore):
        return [store_dir.block(tier) for tier in tiers]
    store = FeatureStore(store_dir)
    blocks = []
    for tier in tiers:
        path = store.table_path(tier)
        if not path.exists():
            raise DataMismatchError(f"no {tier} features in {store_dir} (every video failed?)")
        blocks.append(load_block(path, name=tier))
    return blocks


def load_facts(
    store_dir: Path | MemoryStore, tiers: Sequence[str], ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Per video, {tier: facts} from the store's `facts` column (top labels, faces ...)."""
    if isinstance(store_dir, MemoryStore):
        held = {tier: store_dir.facts(tier) for tier in tiers}
        return [{tier: f[vid] for tier, f in held.items() if f.get(vid)} for vid in ids]
    store = FeatureStore(store_dir)
    by_tier: dict[str, dict[str, Any]] = {}
    for tier in tiers:
        table = store.table(tier)
        if table is not None and "facts" in table:
            by_tier[tier] = dict(zip(table["video_id"].astype(str), table["facts"]))
    out = []
    for vid in ids:
        facts: dict[str, Any] = {}
        for tier, column in by_tier.items():
            raw = column.get(vid)
            parsed = json.loads(raw) if isinstance(raw, str) and raw else {}
            if parsed:
                facts[tier] = parsed
        out.append(facts)
    return out


def dataset_paths(dataset: Dataset) -> np.ndarray:
    """Each video's file; the feature store keys videos by file name, so ids must be file stems."""
    ids = np.asarray(dataset.ids).astype(str)
    if dataset.paths is None:
        return np.asarray([""] * len(ids))
    paths = np.asarray(dataset.paths)
    stems = np.array([Path(p).stem for p in paths])
    clash = np.flatnonzero(stems != ids)
    if clash.size:
        i = int(clash[0])
        raise DataMismatchError(
            f"dataset {dataset.name}: video id {ids[i]!r} is not its file's name ({paths[i]}); "
            f"{clash.size} such videos: name the files <video_id>.<ext>"
        )
    return paths


def report_failures(failed: list[tuple[str, str]], run: Run) -> None:
    """Name the videos that failed to extract (at most 10) and say they are left out."""
    if failed:
        run.note(f"{len(failed)} videos failed to extract and are left out:", warning=True)
        for path, reason in failed[:10]:
            run.note(f"  {path}: {reason}", warning=True)


__all__ = [
    "TEXT_TIERS",
    "dataset_paths",
    "extract_features",
    "frame_tiers",
    "load_facts",
    "load_tier_blocks",
    "report_failures",
]

"""Scoring feature tables and videos against a context: the library side of `tiermem distinct`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiermem.blocks import TABLE_SUFFIXES, Block, load_block
from tiermem.distinctiveness.base import Distinctiveness
from tiermem.distinctiveness.registry import get_distinctiveness
from tiermem.errors import DataMismatchError
from tiermem.run import Run


def _is_table_input(path: Path, source: str) -> bool:
    """A feature table, a feature store holding `source`, or a directory of .npy vectors."""
    if path.is_file():
        return path.name.lower().endswith(TABLE_SUFFIXES)
    if path.is_dir():
        return (path / f"{source}.parquet").is_file() or any(path.glob("*.npy"))
    return False


def _concat_blocks(blocks: Sequence[Block], name: str) -> Block:
    first = blocks[0]
    for b in blocks[1:]:
        if b.feature_names != first.feature_names:
            raise DataMismatchError(
                f"{b.source}: its {b.dim} feature columns differ from {first.source}'s {first.dim}"
            )
    ids = np.concatenate([b.ids for b in blocks])
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataMismatchError(f"video_id {uniq[counts > 1][0]!r} appears in more than one input")
    return Block(
        name,
        ids,
        list(first.feature_names),
        np.concatenate([b.values for b in blocks]),
        ", ".join(b.source for b in blocks),
    )


def load_source_block(
    inputs: Sequence[str | os.PathLike[str]],
    source: str,
    store: str | os.PathLike[str],
    run: Run | None = None,
) -> tuple[Block, list[tuple[str, str]]]:
    """One block of `source` features from tables and/or videos; returns (block, failures).

    Each input is a feature table (Parquet/CSV), a feature-store directory holding
    ``<source>.parquet``, a directory of ``<video_id>.npy``, or else videos and directories of
    videos, whose `source` tier is extracted into the feature store `store` (cached there, so
    context and queries share one fitted tier state). Videos that fail to decode come back as
    (path, reason) failures; the others are kept.
    """
    paths = [Path(p) for p in inputs]
    tables = [p for p in paths if _is_table_input(p, source)]
    videos = [p for p in paths if p not in tables]
    blocks: list[Block] = []
    for p in tables:
        blocks.append(
            load_block(p / f"{source}.parquet" if (p / f"{source}.parquet").is_file() else p, source)
        )
    failures: list[tuple[str, str]] = []
    if videos:
        from tiermem.extraction import extract_videos
        from tiermem.inputs import find_videos

        files = find_videos(videos)  # names an input that holds no video
        report = extract_videos(files, tiers=[source], out=store, run=run)
        failures = list(report.failed)
        wanted = {p.stem for p in files} - {Path(p).stem for p, _ in failures}
        stored = load_block(Path(store) / f"{source}.parquet", source)
        keep = np.isin(stored.ids, sorted(wanted))
        if keep.any():
            blocks.append(
                Block(
                    source,
                    stored.ids[keep],
                    stored.feature_names,
                    stored.values[keep],
                    ", ".join(map(str, videos)),
                )
            )
    if not blocks:
        raise DataMismatchError(f"no usable {source} features in {', '.join(map(str, paths))}")
    return _concat_blocks(blocks, source), failures


@dataclass
class DistinctivenessReport:
    """Per-video distinctiveness of query videos against a context.

    `table` columns: video_id, distinctiveness, percentile (0-100 within the context), in_context
    (True: the video is in the context and got its leave-one-out value), then the method's features.
    """

    table: pd.DataFrame
    estimator: Distinctiveness

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.estimator.summary(), "videos": self.table.to_dict(orient="records")}


def _as_block(table: Block | str | os.PathLike[str]) -> Block:
    return table if isinstance(table, Block) else load_block(table)


def distinctiveness_report(
    context: Block | str | os.PathLike[str],
    query: Block | str | os.PathLike[str],
    method: str = "knn",
    source: str | None = None,
    **params: Any,
) -> DistinctivenessReport:
    """Fit `method` on the context block and score every video of the query block.

    Tables are read by `tiermem.blocks.load_block` (Parquet/CSV with `video_id`, a feature-store
    table, or a directory of .npy vectors); the query needs every feature column of the context.
    A query video that is also in the context gets its leave-one-out value, so scoring the
    context against itself ranks each video against the others. `source` names the features
    (default: the context block's name).
    """
    ctx, qry = _as_block(context), _as_block(query)
    where = {name: i for i, name in enumerate(qry.feature_names)}
    missing = [c for c in ctx.feature_names if c not in where]
    if missing:
        raise DataMismatchError(
            f"block {qry.name!r} ({qry.source}): missing {len(missing)} of the context's "
            f"{ctx.dim} feature columns, first {missing[0]!r}"
        )
    Xq = qry.values[:, [where[c] for c in ctx.feature_names]].astype(np.float64)
    est = get_distinctiveness(method, source=source or ctx.name, **params)
    F_context = est.fit_transform(ctx.values.astype(np.float64))
    position = {vid: i for i, vid in enumerate(ctx.ids)}
    rows = np.array([position.get(vid, -1) for vid in qry.ids], dtype=np.int64)
    in_context = rows >= 0
    F = np.empty((len(qry.ids), F_context.shape[1]))
    F[in_context] = F_context[rows[in_context]]
    if (~in_context).any():
        F[~in_context] = est.transform(Xq[~in_context])
    scores = est.score_features(F)
    out = pd.DataFrame(
        {
            "video_id": qry.ids.astype(str),
            "distinctiveness": scores,
            "percentile": est.percentile(scores),
            "in_context": in_context,
        }
    )
    out = pd.concat([out, pd.DataFrame(F, columns=est.feature_names)], axis=1)
    return DistinctivenessReport(table=out, estimator=est)


__all__ = ["DistinctivenessReport", "distinctiveness_report", "load_source_block"]

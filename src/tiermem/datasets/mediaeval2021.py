"""MediaEval 2021 "Predicting Media Memorability": its Memento10k and TRECVid subsets.

Both subsets ship the same CSVs, one folder per split (folder names vary between copies,
e.g. `train_set/` or `training_set/`; the file names do not)::

    <split folder>/<p>_scores.csv             p = train | dev (test: withheld)
        video_id, video_url, annotations_short_term, scores_raw_short_term,
        scores_normalized_short_term, decay_alpha
        (+ annotations_long_term, scores_raw_long_term in the TRECVid subset)
    <split folder>/<p>_text_descriptions.csv  video_id, description_0..4 (Memento10k: one row
                                              per video) or video_id, description (TRECVid:
                                              one row per caption)
    <split folder>/<p>_video_urls.csv         video_id, video_url (lists the test videos)
    <split folder>/Videos/<video_id:05d>.mp4  the clips, when downloaded

A root may also be one `<p>_scores.csv` file: that split alone is read, with the
descriptions beside it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tiermem.datasets.captions import read_captions_csv
from tiermem.datasets.record import (
    Dataset,
    clean_ids,
    clean_scores,
    read_csv,
    require_columns,
    resolve_videos,
)
from tiermem.datasets.registry import register_dataset
from tiermem.errors import DatasetError

PARTITIONS = ("train", "dev", "test")
REQUIRED = ("video_id", "scores_raw_short_term", "scores_normalized_short_term")
#: Score columns read when present, in output order; `video_url` and unknown columns are ignored.
SCORE_COLUMNS = (
    "scores_normalized_short_term",
    "scores_raw_short_term",
    "annotations_short_term",
    "decay_alpha",
    "scores_raw_long_term",
    "annotations_long_term",
)


def _find(root: Path, name: str) -> Path | None:
    """`name` in `root` or one folder below it (the split folders)."""
    direct = root / name
    if direct.is_file():
        return direct
    hits = sorted(root.glob(f"*/{name}"))
    return hits[0] if hits else None


@register_dataset("mediaeval2021", default_target="scores_normalized_short_term")
def read_mediaeval2021(
    root: str | Path, *, name: str = "mediaeval2021", videos: bool | None = None
) -> Dataset:
    """Read a MediaEval 2021 subset (Memento10k or TRECVid): every split found under `root`.

    `videos`: True requires every clip as `<split folder>/Videos/<id:05d>.mp4` (or `<id>.mp4`),
    False ignores videos, None uses them when a Videos folder exists.
    """
    root = Path(root)
    if root.is_file():
        stem = root.name.removesuffix("_scores.csv")
        if stem not in PARTITIONS or stem == root.name:
            raise DatasetError(f"{root}: expected a MediaEval 2021 <train|dev>_scores.csv")
        parts = {stem: root.parent}
    else:
        parts = {}
        for p in PARTITIONS:
            hit = (
                _find(root, f"{p}_scores.csv")
                or _find(root, f"{p}_video_urls.csv")
                or _find(root, f"{p}_text_descriptions.csv")
            )
            if hit is not None:
                parts[p] = hit.parent
        if not parts:
            raise DatasetError(
                f"{root}: no MediaEval 2021 <train|dev|test>_scores.csv / _video_urls.csv found"
            )

    ids: list[str] = []
    split: list[str] = []
    frames: list[pd.DataFrame] = []
    captions: list[list[str]] = []
    paths: list[str] | None = []
    sources: list[str] = []
    have_captions = False
    for p, folder in parts.items():
        part_ids, scores, src = _read_partition(folder, p)
        sources += src
        desc_path = folder / f"{p}_text_descriptions.csv"
        if desc_path.is_file():
            have_captions = True
            desc = read_captions_csv(desc_path)
            sources.append(str(desc_path))
            known = set(part_ids)
            extra = [v for v in desc if v not in known]
            if extra and part_ids:
                raise DatasetError(
                    f"{desc_path}: video {extra[0]!r} is not in the {p} split ({len(extra)} such)"
                )
            if not part_ids:
                part_ids = list(desc)
                scores = pd.DataFrame(index=range(len(part_ids)))
            captions += [desc.get(v, []) for v in part_ids]
        else:
            captions += [[] for _ in part_ids]
        vdir = folder / "Videos"
        part_paths = resolve_videos(
            part_ids,
            [f"{int(v):05d}.mp4" if v.isdigit() else f"{v}.mp4" for v in part_ids],
            vdir,
            videos,
            folder,
            candidates=[[f"{v}.mp4"] for v in part_ids],
        )
        if part_paths is None:
            paths = None
        elif paths is not None:
            paths += part_paths
        ids += part_ids
        split += [p] * len(part_ids)
        frames.append(scores)

    dup = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(dup):
        raise DatasetError(f"{root}: video {dup[0]!r} appears in more than one split")
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    order = [c for c in SCORE_COLUMNS if c in scores.columns]
    scores = scores[order]
    scores.index = pd.Index(ids, name="video_id")
    return Dataset(
        name=name,
        ids=ids,
        scores=scores,
        paths=paths if paths else None,
        captions=captions if have_captions else None,
        split=split,
        sources=sources,
    )


def _read_partition(folder: Path, p: str) -> tuple[list[str], pd.DataFrame, list[str]]:
    """Ids and scores of one split: from `<p>_scores.csv`, else the ids of `<p>_video_urls.csv`."""
    scores_path = folder / f"{p}_scores.csv"
    if scores_path.is_file():
        df = read_csv(scores_path, dtype={"video_id": str})
        require_columns(df, REQUIRED, scores_path)
        ids = clean_ids(df["video_id"], scores_path)
        cols = [c for c in SCORE_COLUMNS if c in df.columns]
        return ids, clean_scores(df, cols, scores_path), [str(scores_path)]
    urls = folder / f"{p}_video_urls.csv"
    if urls.is_file():
        df = read_csv(urls, dtype={"video_id": str})
        require_columns(df, ["video_id"], urls)
        ids = clean_ids(df["video_id"], urls)
        return ids, pd.DataFrame(index=range(len(ids))), [str(urls)]
    return [], pd.DataFrame(), []

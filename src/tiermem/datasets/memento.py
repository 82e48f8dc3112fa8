"""Memento10k as its authors release it (Newman et al., ECCV 2020; http://memento.csail.mit.edu/).

Layout read here (the one M3-S's `dataset.py` reads)::

    <root>/memento_train_data.json   a JSON list, one object per video
    <root>/memento_val_data.json
    <root>/memento_test_data.json    same objects without scores (labels withheld)
    <root>/videos/<filename>         the clips (optional)

Each object holds `filename` (the clip's file name, e.g. "xxxx.mp4"), `url`, `mem_score`
(memorability normalised to a common lag; absent from the test file) and `captions` (the five
human descriptions); `alpha` (the decay of memorability with lag) is read when present. Other
keys are ignored. The video id is the file name without extension.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tiermem.datasets.record import Dataset, clean_captions, clean_scores, resolve_videos
from tiermem.datasets.registry import register_dataset
from tiermem.errors import DatasetError

SPLITS = ("train", "val", "test")
#: JSON keys read as targets, in output column order.
SCORE_KEYS = ("mem_score", "alpha")


def memento_json_path(root: Path, split: str) -> Path:
    return Path(root) / f"memento_{split}_data.json"


@register_dataset("memento10k", default_target="mem_score")
def read_memento10k(
    root: str | Path,
    *,
    splits: tuple[str, ...] | None = None,
    videos: bool | None = None,
    video_dir: str | Path | None = None,
) -> Dataset:
    """Read the authors' Memento10k release under `root`.

    `splits`: which of train/val/test to read (default: every `memento_<split>_data.json`
    present; at least one must be). `videos`: True requires every clip under `video_dir`
    (default `<root>/videos`), False ignores videos, None uses them when the directory exists.
    """
    root = Path(root)
    wanted = splits or tuple(s for s in SPLITS if memento_json_path(root, s).is_file())
    if not wanted:
        raise DatasetError(
            f"{root}: no memento_{{train,val,test}}_data.json found (Memento10k release layout)"
        )

    ids: list[str] = []
    names: list[str] = []
    split: list[str] = []
    captions: list[list[str]] = []
    records: list[dict[str, object]] = []
    where: list[str] = []
    sources: list[str] = []
    first_seen: dict[str, str] = {}
    for s in wanted:
        path = memento_json_path(root, s)
        entries = _load_json_list(path)
        sources.append(str(path))
        for i, entry in enumerate(entries):
            at = f"entry {i}"
            if not isinstance(entry, dict):
                raise DatasetError(f"{path}: {at}: not a JSON object")
            filename = entry.get("filename")
            if not isinstance(filename, str) or not filename.strip():
                raise DatasetError(f"{path}: {at}: missing 'filename'")
            vid = Path(filename).stem
            at = f"entry {i} ({filename})"
            if vid in first_seen:
                raise DatasetError(f"{path}: {at}: duplicate video {vid!r} (first in {first_seen[vid]})")
            first_seen[vid] = f"{path.name} {at}"
            if s != "test" and entry.get("mem_score") is None:
                raise DatasetError(f"{path}: {at}: missing 'mem_score'")
            caps = entry.get("captions", [])
            if not isinstance(caps, list):
                raise DatasetError(f"{path}: {at}: 'captions' is not a list")
            ids.append(vid)
            names.append(filename)
            split.append(s)
            captions.append(clean_captions(caps, path, at))
            records.append({k: entry.get(k) for k in SCORE_KEYS})
            where.append(f"{path}: {at}")

    frame = pd.DataFrame(records, columns=list(SCORE_KEYS))
    present = [k for k in SCORE_KEYS if frame[k].notna().any()]
    # A missing score is an error in train/val (checked above) and "withheld" in test.
    scores = clean_scores(frame, present, None, allow_missing=True, row_names=where)
    scores.index = pd.Index(ids, name="video_id")

    vdir = Path(video_dir) if video_dir is not None else root / "videos"
    paths = resolve_videos(ids, names, vdir, videos, root)
    return Dataset(
        name="memento10k",
        ids=ids,
        scores=scores,
        paths=paths,
        captions=captions if any(captions) else None,
        split=split,
        sources=sources,
    )


def _load_json_list(path: Path) -> list[object]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of videos, got {type(data).__name__}")
    return data

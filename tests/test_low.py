"""Low-level tier: known answers on generated clips, HOG equal to skimage, PCA state round trip, real clips."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import write_video
from skimage.feature import hog as skimage_hog

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.tiers import get_tier, list_tiers
from tiermem.tiers.frame_stats import colour_features, contrast, grey_frames
from tiermem.tiers.hog import hog_descriptors
from tiermem.tiers.low import LowTier
from tiermem.tiers.motion import cut_count
from tiermem.tiers.sharpness import MAGNITUDE_FLOOR, detail_share, fft_blurriness
from tiermem.video import Clip, VideoMeta, decode

SIZE = 256


def texture(height: int, width: int, seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    """A smooth random grey texture (uint8), detailed enough for flow and HOG."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (height, width)).astype(np.float32), (0, 0), sigma)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def as_clip(frames: np.ndarray, duration: float = 3.0, bytes_per_second: float = 1000.0) -> Clip:
    """Wrap frames in a Clip directly (exact pixel values, no codec in between)."""
    t = len(frames)
    meta = VideoMeta(
        path="generated",
        duration=duration,
        fps=t / duration,
        width=frames.shape[2],
        height=frames.shape[1],
        frame_count=t,
        codec="none",
        bitrate=0,
        file_size=0,
        has_audio=False,
        video_bytes_per_second=bytes_per_second,
    )
    return Clip(frames=frames, times=np.linspace(0, duration, t, endpoint=False), meta=meta)


def rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=-1)


@pytest.fixture(scope="module")
def fitted_low(sample_clip_paths: list[Path]) -> LowTier:
    """The low tier with its HOG PCA fitted on the sample clips (5 frames each)."""
    return LowTier().fit(decode(p, frames=5) for p in sample_clip_paths)


def features(tier: LowTier, clip: Clip) -> dict[str, float]:
    return dict(zip(tier.feature_names, tier.transform(clip).tolist()))


# -- contract ------------------------------------------------------------------------------


def test_registered_and_names() -> None:
    assert "low" in list_tiers()
    tier = get_tier("low", hog_stride=1)
    assert isinstance(tier, LowTier) and tier.config["hog_stride"] == 1
    names = tier.feature_names
    assert len(names) == 2 * (7 + 10) + 2 == len(set(names))
    assert names[:4] == ["brightness_mean", "brightness_std", "contrast_mean", "contrast_std"]
    assert "hog_pca_9_std" in names and names[-2:] == ["size_orig", "cut_rate"]


def test_transform_before_fit_says_to_fit() -> None:
    with pytest.raises(TiermemError, match="fit"):
        LowTier().transform(as_clip(np.zeros((3, 64, 64, 3), np.uint8)))


# -- HOG ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(256, 256), (75, 101)])  # a size that is no multiple of 8
def test_hog_equals_skimage(sample_clip_paths: list[Path], shape: tuple[int, int]) -> None:
    clip = decode(sample_clip_paths[1], frames=3, size=256)
    grey = grey_frames(clip.frames)[:, : shape[0], : shape[1]]
    ours = hog_descriptors(grey)
    for i in range(len(grey)):
        reference = skimage_hog(
            grey[i].astype(np.float32),
            orientations=9,
            pixels_per_cell=(8, 8),
            cells_per_block=(2, 2),
            block_norm="L2-Hys",
        )
        assert ours[i].shape == reference.shape
        np.testing.assert_allclose(ours[i], reference, atol=1e-6)


# -- known answers ---------------------------------------------------------------------------


def test_solid_colour_clip(fitted_low: LowTier) -> None:
    frames = np.empty((45, SIZE, SIZE, 3), np.uint8)
    frames[:] = (200, 30, 60)
    f = features(fitted_low, as_clip(frames, bytes_per_second=1234.0))
    assert f["brightness_mean"] == pytest.approx(200 / 255, abs=1e-6)
    assert f["saturation_mean"] == pytest.approx((200 - 30) / 200, abs=3e-3)  # OpenCV rounds S to 1/255
    # Hasler–Süsstrunk on a flat frame: no spread, 0.3 x the opponent-colour mean norm.
    assert f["colourfulness_mean"] == pytest.approx(0.3 * np.hypot(200 - 30, (200 + 30) / 2 - 60), rel=1e-5)
    for name in ("contrast_mean", "detail_share_mean", "flow_mean", "cut_rate", "brightness_std"):
        assert f[name] == pytest.approx(0.0, abs=1e-6), name
    # Nothing is left once the low frequencies go: |reconstruction| is at its floor everywhere.
    assert f["blurriness_mean"] == pytest.approx(20 * np.log(MAGNITUDE_FLOOR), abs=1e-3)
    assert f["blurriness_std"] < 1e-4  # float32 rounding of -138 only
    assert f["size_orig"] == 1234.0


def test_solid_colour_through_a_real_video(tmp_path: Path, fitted_low: LowTier) -> None:
    path = write_video(tmp_path / "solid.mp4", np.full((45, SIZE, SIZE, 3), (40, 160, 220), np.uint8), fps=15)
    clip = decode(path)
    f = features(fitted_low, clip)
    assert f["brightness_mean"] == pytest.approx(220 / 255, abs=0.015)
    assert f["contrast_mean"] < 0.005 and f["flow_mean"] < 0.01 and f["cut_rate"] == 0
    assert f["size_orig"] == pytest.approx(clip.meta.video_bytes_per_second) and f["size_orig"] > 0


def test_colour_and_contrast_match_their_definitions(sample_clip_paths: list[Path]) -> None:
    frames = decode(sample_clip_paths[2], frames=4, size=64).frames
    x = frames.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg, yb = (r - g).reshape(4, -1), (0.5 * (r + g) - b).reshape(4, -1)
    expected = np.hypot(rg.std(1), yb.std(1)) + 0.3 * np.hypot(rg.mean(1), yb.mean(1))
    got = colour_features(frames)
    np.testing.assert_allclose(got["colourfulness"], expected, rtol=1e-5)
    np.testing.assert_allclose(got["brightness"], x.max(-1).reshape(4, -1).mean(1) / 255, atol=1e-6)
    grey = 0.299 * r + 0.587 * g + 0.114 * b
    np.testing.assert_allclose(contrast(grey_frames(frames)), grey.reshape(4, -1).std(1) / 255, atol=2e-3)


def test_static_clip_has_no_motion_and_no_cut(fitted_low: LowTier) -> None:
    frames = np.repeat(rgb(texture(SIZE, SIZE))[None], 45, axis=0)
    f = features(fitted_low, as_clip(frames))
    assert f["flow_mean"] < 0.01 and f["cut_rate"] == 0
    for name in ("brightness_std", "contrast_std", "blurriness_std", "hog_pca_0_std"):
        assert f[name] == pytest.approx(0.0, abs=1e-5), name


@pytest.mark.parametrize("k", [2, 6])
def test_translating_pattern_flow_is_k_pixels(tmp_path: Path, fitted_low: LowTier, k: int) -> None:
    """A texture moving k px per frame at the sampled size: all 45 frames sampled, flow ≈ k."""
    wide = texture(SIZE, SIZE + 45 * k, seed=k)
    frames = rgb(np.stack([wide[:, i * k : i * k + SIZE] for i in range(45)]))
    clip = decode(write_video(tmp_path / f"move{k}.mp4", frames, fps=15), frames=45, size=SIZE)
    f = features(fitted_low, clip)
    assert f["flow_mean"] == pytest.approx(k, rel=0.15)
    assert f["flow_std"] < 0.15 * k and f["cut_rate"] == 0


def paper_blurriness(rgb_frame: np.ndarray, size: int = 60) -> float:
    """The M3-S script's FFT blur measure of one frame, written out as its definition reads:
    resize to 500 px wide (area), grey, fft2, fftshift, zero the centre [c-60, c+60) both ways,
    inverse shift, ifft2, mean of 20 ln|reconstruction| (double precision, numpy's FFT)."""
    h, w = rgb_frame.shape[:2]
    img = cv2.resize(rgb_frame, (500, int(h * 500 / w)), interpolation=cv2.INTER_AREA)
    img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    cy, cx = img.shape[0] // 2, img.shape[1] // 2
    shifted = np.fft.fftshift(np.fft.fft2(img))
    shifted[cy - size : cy + size, cx - size : cx + size] = 0
    return float(np.mean(20 * np.log(np.abs(np.fft.ifft2(np.fft.ifftshift(shifted))))))


@pytest.mark.parametrize(("index", "shape"), [(2, (256, 256)), (5, (144, 176)), (0, (180, 320))])
def test_blurriness_is_the_papers_fft_measure(
    sample_clip_paths: list[Path], index: int, shape: tuple[int, int]
) -> None:
    clip = decode(sample_clip_paths[index], frames=12)  # at its own frame size
    frames = np.stack([cv2.resize(f, shape[::-1], interpolation=cv2.INTER_AREA) for f in clip.frames])
    expected = np.array([paper_blurriness(f) for f in frames])
    np.testing.assert_allclose(fft_blurriness(frames), expected, rtol=1e-4, atol=1e-3)
    assert expected.std() > 0.05  # frames that differ, so a per-frame mix-up would show


def test_blurred_copy_scores_lower_blurriness(tmp_path: Path, fitted_low: LowTier) -> None:
    sharp = np.stack([texture(SIZE, SIZE, seed=i, sigma=0.7) for i in range(3)])
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in sharp])
    s = detail_share(sharp, fitted_low.blur_cutoff)
    b = detail_share(blurred, fitted_low.blur_cutoff)
    assert np.all(b < 0.3 * s) and np.all(s > 0.5)
    assert np.all(fft_blurriness(rgb(blurred)) < fft_blurriness(rgb(sharp)) - 10)  # 20 ln: 10 is a 40% drop
    # The same through encode + decode + the tier.
    fs = features(fitted_low, decode(write_video(tmp_path / "sharp.mp4", rgb(np.repeat(sharp, 5, 0)))))
    fb = features(fitted_low, decode(write_video(tmp_path / "blur.mp4", rgb(np.repeat(blurred, 5, 0)))))
    assert fb["detail_share_mean"] < 0.5 * fs["detail_share_mean"]
    assert fb["blurriness_mean"] < fs["blurriness_mean"] - 10


def test_two_scenes_make_exactly_one_cut(tmp_path: Path, fitted_low: LowTier) -> None:
    scene_a = rgb(texture(SIZE, SIZE, seed=1)) // 2  # dark grey texture
    scene_b = np.clip(rgb(texture(SIZE, SIZE, seed=2)).astype(int) + (60, 20, -40), 0, 255).astype(np.uint8)
    # Small camera drift inside each scene, so within-scene frames are not identical.
    frames = [np.roll(scene_a, i, axis=1) for i in range(20)] + [
        np.roll(scene_b, i, axis=0) for i in range(25)
    ]
    clip = decode(write_video(tmp_path / "cut.mp4", frames, fps=15))
    assert cut_count(clip.frames, fitted_low.cut_threshold) == 1
    assert features(fitted_low, clip)["cut_rate"] == pytest.approx(1 / clip.meta.duration)


def test_one_frame_clip(fitted_low: LowTier) -> None:
    f = features(fitted_low, as_clip(rgb(texture(SIZE, SIZE))[None], duration=0.04))
    assert f["flow_mean"] == 0 and f["cut_rate"] == 0 and f["hog_pca_0_std"] == 0
    assert np.isfinite(list(f.values())).all()


# -- fitting and state -----------------------------------------------------------------------


def test_state_round_trip_without_pickle(fitted_low: LowTier, sample_clip_paths: list[Path]) -> None:
    state = fitted_low.state_dict()
    assert state["hog_pca_components"].shape == (10, 31 * 31 * 36)
    assert state["hog_pca_frames"] == 5 * len(sample_clip_paths)
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as saved:
        restored = LowTier().load_state_dict({k: saved[k] for k in saved.files})
    clip = decode(sample_clip_paths[0])
    np.testing.assert_array_equal(restored.transform(clip), fitted_low.transform(clip))
    assert restored.config_hash() == fitted_low.config_hash()
    other = LowTier().fit(decode(p, frames=5) for p in sample_clip_paths[:3])
    assert other.config_hash() != fitted_low.config_hash()
    assert LowTier(cut_threshold=0.5).load_state_dict(state).config_hash() != fitted_low.config_hash()


def test_state_with_wrong_shape_is_refused(fitted_low: LowTier) -> None:
    state = dict(fitted_low.state_dict())
    state["hog_pca_components"] = state["hog_pca_components"][:5]
    with pytest.raises(DataMismatchError, match="components"):
        LowTier().load_state_dict(state)


def test_fit_streams_in_batches(sample_clip_paths: list[Path]) -> None:
    clips = [decode(p, frames=9, size=128) for p in sample_clip_paths]  # 54 frames in all
    whole = LowTier().fit(clips)
    # A one-pass generator and 16-row batches: 54 = 16 + 16 + 22 (the last batch keeps >= 10 rows).
    batched = LowTier(pca_batch_rows=16).fit(c for c in clips)
    assert batched.hog_pca_frames_ == whole.hog_pca_frames_ == 54
    np.testing.assert_allclose(batched.hog_pca_mean_, whole.hog_pca_mean_, atol=1e-6)
    agreement = np.abs((batched.hog_pca_components_[:3] * whole.hog_pca_components_[:3]).sum(axis=1))
    assert np.all(agreement > 0.99)


@pytest.mark.parametrize("variant", [{}, {"hog_colour": True, "pca_whiten": True, "pca_frames_per_clip": 1}])
def test_a_deferred_clip_completes_to_its_transform(sample_clip_paths: list[Path], variant: dict) -> None:
    """Fitted on the extraction's pass (work first, fit on its rows, then completed) equals a
    fit on the same clips followed by transform, bit for bit, facts (cut times) included."""
    clips = [decode(p, frames=15, size=128) for p in sample_clip_paths]
    whole = LowTier(**variant).fit(clips, frames_per_clip=12)
    on_pass = LowTier(**variant)
    deferred = [on_pass.defer(c, frames_per_clip=12) for c in clips]
    # 12 of 15 frames feed the fit: 0, 1, 3, ... of which 0, 3, 6, 9, 12 are texture frames too
    assert [len(d.fit_rows) for d in deferred] == [12] * len(clips)
    fit = on_pass.start_fit()
    for d in deferred:
        fit.add(d.fit_rows)
    fit.finish()
    np.testing.assert_array_equal(on_pass.hog_pca_components_, whole.hog_pca_components_)
    assert on_pass.config_hash() == whole.config_hash()
    for clip, d in zip(clips, deferred):
        values, facts = on_pass.complete(d)
        np.testing.assert_array_equal(values, whole.transform(clip))
        assert facts == whole.transform_batch([clip]).facts[0]


def test_a_deferred_clip_needs_the_fit_and_its_frame_size(sample_clip_paths: list[Path]) -> None:
    tier = LowTier()
    deferred = tier.defer(decode(sample_clip_paths[0], frames=9, size=128))
    with pytest.raises(TiermemError, match="HOG PCA fitted"):
        tier.complete(deferred)
    tier.fit([decode(p, frames=9, size=64) for p in sample_clip_paths])
    with pytest.raises(DataMismatchError, match="8100 dimensions, the fitted PCA expects 1764"):
        tier.complete(deferred)
    # what a deferred clip holds until completed: 3 texture frames of [blur, 8100 HOG values]
    assert deferred.work["texture"].nbytes == tier.deferred_bytes(9, 128) == 3 * 8101 * 4


def test_the_hog_pca_is_scikit_learns_incremental_pca(sample_clip_paths: list[Path]) -> None:
    """The Gram-matrix update gives IncrementalPCA's mean, axes (signs included) and singular
    values on real HOG rows fed in the same batches, to float32 round-off."""
    from sklearn.decomposition import IncrementalPCA

    from tiermem.tiers.hog_pca import HogPcaFit

    rows = [hog_descriptors(grey_frames(decode(p, frames=12, size=128).frames)) for p in sample_clip_paths]
    got: dict = {}
    fit = HogPcaFit(10, 32, whiten=True, into=lambda mean, axes, n: got.update(mean=mean, axes=axes, n=n))
    reference = IncrementalPCA(n_components=10)
    held = np.zeros((0, rows[0].shape[1]), np.float32)
    for clip_rows in rows:
        fit.add(clip_rows)
        held = np.concatenate([held, clip_rows])
        if len(held) >= 32 + 10:
            reference.partial_fit(held[:32])
            held = held[32:]
    reference.partial_fit(held)
    fit.finish()
    assert got["n"] == reference.n_samples_seen_ == 72
    np.testing.assert_allclose(got["mean"], reference.mean_, atol=1e-6)
    whitened = reference.components_ / np.sqrt(reference.explained_variance_)[:, None]
    np.testing.assert_allclose(got["axes"], whitened, atol=1e-4 * np.abs(whitened).max())


def test_fit_needs_enough_frames(sample_clip_paths: list[Path]) -> None:
    with pytest.raises(TiermemError, match="at least 10 frames"):
        LowTier().fit([decode(sample_clip_paths[0], frames=4, size=64)])
    with pytest.raises(TiermemError, match="no clips"):
        LowTier().fit([])


def test_frame_size_must_match_the_fit(fitted_low: LowTier, sample_clip_paths: list[Path]) -> None:
    with pytest.raises(DataMismatchError, match="same frame size"):
        fitted_low.transform(decode(sample_clip_paths[0], frames=5, size=128))


# -- real clips ------------------------------------------------------------------------------


def test_real_sample_clips(fitted_low: LowTier, sample_clip_paths: list[Path]) -> None:
    by_name = {}
    for path in sample_clip_paths:
        clip = decode(path)
        timings: dict[str, float] = {}
        values = fitted_low.transform(clip, timings=timings)
        assert values.dtype == np.float32 and np.isfinite(values).all()
        assert set(timings) == {"grey", "colour", "contrast", "detail", "blurriness", "flow", "hog", "cuts"}
        by_name[path.stem] = dict(zip(fitted_low.feature_names, values.tolist()))
    # bikes_000 has one hard cut, bikes_001 two (taxi -> bus between its first two sampled
    # frames, then another at frame 36; checked by eye), the others none.
    assert [round(f["cut_rate"] * 3) for f in by_name.values()] == [0, 1, 2, 0, 0, 0]
    # The distorted carphone is the same scene as the pristine one at a far lower bitrate.
    assert (
        by_name["carphone_distorted_000"]["size_orig"] < 0.5 * by_name["carphone_pristine_000"]["size_orig"]
    )
    for sharpness in ("blurriness_mean", "detail_share_mean"):
        assert by_name["carphone_distorted_000"][sharpness] < by_name["carphone_pristine_000"][sharpness]
    # The cyclists pan and cut; the bunny shot is nearly still.
    assert by_name["bikes_000"]["flow_mean"] > 3 * by_name["bigbuckbunny_000"]["flow_mean"]


def test_the_reference_variant(sample_clip_paths: list[Path]) -> None:
    """Colour HOG as skimage's multichannel HOG, a whitened PCA of each clip's first frame, means only."""
    frames = decode(sample_clip_paths[0], frames=3, size=64).frames
    np.testing.assert_allclose(
        hog_descriptors(frames),
        np.stack(
            [
                skimage_hog(
                    f,
                    orientations=9,
                    pixels_per_cell=(8, 8),
                    cells_per_block=(2, 2),
                    block_norm="L2-Hys",
                    channel_axis=-1,
                )
                for f in frames
            ]
        ),
        atol=1e-6,
    )
    clips = [decode(p, frames=12, size=64) for p in sample_clip_paths] * 2  # 12 first frames
    tier = LowTier(
        hog_colour=True,
        pca_whiten=True,
        pca_frames_per_clip=1,
        temporal_std=False,
        extras=False,
        pca_components=5,
    ).fit(clips)
    assert tier.hog_pca_frames_ == 12
    assert tier.feature_names == [
        "brightness_mean",
        "contrast_mean",
        "blurriness_mean",
        "flow_mean",
        *[f"hog_pca_{k}_mean" for k in range(5)],
        "size_orig",
    ]
    first = np.stack([c.frames[0] for c in clips])
    projected = (hog_descriptors(first) - tier.hog_pca_mean_) @ tier.hog_pca_components_.T
    np.testing.assert_allclose(
        projected.var(axis=0, ddof=1), 1.0, rtol=1e-3
    )  # whitened on the fitting frames
    plain = dict(zip(LowTier().feature_names, LowTier().fit(clips).transform(clips[0]).tolist()))
    variant = dict(zip(tier.feature_names, tier.transform(clips[0]).tolist()))
    for name in ("brightness_mean", "contrast_mean", "blurriness_mean", "flow_mean", "size_orig"):
        assert variant[name] == pytest.approx(plain[name], rel=1e-6)
    assert LowTier().config_hash() != tier.config_hash()
    assert "hog_colour" not in LowTier().config  # the default tier keeps its cache key


def test_colour_histograms_count_every_fourth_pixel_into_equal_bins() -> None:
    from tiermem.tiers.motion import colour_histograms

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(5, 64, 48, 3), dtype=np.uint8)
    frames[0] = 255  # the top bin's edge
    got = colour_histograms(frames, bins=16, step=4)
    sampled = frames[:, ::4, ::4].reshape(5, -1, 3)
    want = (
        np.stack([[np.bincount(sampled[t, :, c] // 16, minlength=16) for c in range(3)] for t in range(5)])
        / sampled.shape[1]
    )
    np.testing.assert_array_equal(got, want)
    assert got[0, :, 15].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="divides 256"):
        colour_histograms(frames, bins=10)

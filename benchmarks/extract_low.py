"""Speed and memory of decoding + the low-level tier on the sample clips (3 s, 45 frames at 256x256).

Targets on a 2-core machine: low tier <= 100 ms per clip in one process (the reference
per-frame skimage/imutils loop: ~1250 ms), decode of the 720p clip <= 150 ms, 2 workers >= 1.7x
one, peak RSS < 1 GB over 1000 clips. Timings are wall-clock medians; run it on a quiet machine.

    python benchmarks/extract_low.py                 # per-clip timings, 1 vs 2 workers on 60 clips
    python benchmarks/extract_low.py --clips 1000    # the 1000-clip memory run (a few minutes)

Sections:
1. per clip, in this process: decode (FFmpeg threads on auto) and each low-tier feature group
   (one thread); the 720p bigbuckbunny clip is reported apart as the decode reference.
2. throughput: decode + low tier of `--clips` clips (the sample clips cycled) in a pool of 1 and
   of 2 worker processes, one thread each (decoder, OpenCV, torch); clips/s and speed-up.
3. memory: peak RSS of this process after `--clips` clips in-process, and of the largest worker.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tiermem.tiers.low import LowTier
from tiermem.video import decode
from tiermem.video.samples import make_sample_clips

GROUPS = ("grey", "colour", "contrast", "detail", "blurriness", "flow", "hog", "cuts")
#: Wall-clock rows, plus CPU time of decode (all FFmpeg threads) and of the low tier (one
#: thread): CPU well below wall means the machine was busy and the wall figures are inflated.
COLUMNS = ("decode", "decode cpu", *GROUPS, "low total", "low total cpu")
REFERENCE_720P = "bigbuckbunny_000"

_WORKER: dict = {}


def one_thread() -> None:
    """One OpenCV/OpenMP thread. Not tiermem.runtime.set_threads: that imports torch (+650 MB
    RSS here), which the low tier never uses."""
    os.environ["OMP_NUM_THREADS"] = "1"
    cv2.setNumThreads(1)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024


def _worker_init(state: dict) -> None:
    one_thread()
    _WORKER["tier"] = LowTier().load_state_dict(state)


def _worker_run(path: str) -> int:
    clip = decode(path, threads=1)
    _WORKER["tier"].transform(clip)
    return clip.num_frames


def per_clip_timings(paths: list[Path], tier: LowTier, repeats: int) -> dict[str, dict[str, list[float]]]:
    """{clip stem: {column of COLUMNS: [ms per repeat]}}."""
    out: dict[str, dict[str, list[float]]] = {}
    for path in paths:
        rows: dict[str, list[float]] = {k: [] for k in COLUMNS}
        decode(path)  # warm the page cache and FFmpeg
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            clip = decode(path)
            rows["decode"].append(1000 * (time.perf_counter() - start))
            rows["decode cpu"].append(1000 * (time.process_time() - cpu))
            timings: dict[str, float] = {}
            start, cpu = time.perf_counter(), time.process_time()
            tier.transform(clip, timings=timings)
            rows["low total"].append(1000 * (time.perf_counter() - start))
            rows["low total cpu"].append(1000 * (time.process_time() - cpu))
            for group in GROUPS:
                rows[group].append(1000 * timings[group])
        out[path.stem] = rows
    return out


def throughput(
    paths: list[Path], state: dict, workers: int, n_clips: int, progress: Progress
) -> tuple[float, float]:
    """(clips per second, peak RSS MiB of the largest worker) for decode + low tier in a pool."""
    jobs = [str(p) for p in itertools.islice(itertools.cycle(paths), n_clips)]
    ctx = multiprocessing.get_context("spawn")  # fresh workers: RSS is theirs alone
    task = progress.add_task(f"{workers} worker(s)", total=len(jobs))
    with ctx.Pool(workers, initializer=_worker_init, initargs=(state,)) as pool:
        pool.map(_worker_run, [str(paths[0])] * workers)  # start-up and imports are not timed
        start = time.perf_counter()
        for _ in pool.imap_unordered(_worker_run, jobs, chunksize=4):
            progress.advance(task)
        seconds = time.perf_counter() - start
        rss = max(pool.map(_child_peak_rss, range(workers), chunksize=1))
    return len(jobs) / seconds, rss


def _child_peak_rss(_: int) -> float:
    time.sleep(0.2)  # let every worker take one of these
    return peak_rss_mb()


def in_process_memory(paths: list[Path], tier: LowTier, n_clips: int, progress: Progress) -> float:
    task = progress.add_task("in-process (memory)", total=n_clips)
    for path in itertools.islice(itertools.cycle(paths), n_clips):
        tier.transform(decode(path))
        progress.advance(task)
    return peak_rss_mb()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=60, help="clips for the throughput and memory runs")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per sample clip")
    parser.add_argument("--workers", default="1,2", help="pool sizes to compare, comma-separated")
    parser.add_argument(
        "--clip-dir", type=Path, default=None, help="where to cut the sample clips (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    console = Console()
    one_thread()

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_sample_clips(args.clip_dir or Path(tmp) / "clips")
        tier = LowTier().fit(decode(p, frames=5) for p in paths)
        state = tier.state_dict()
        rss_start = peak_rss_mb()

        per_clip = per_clip_timings(paths, tier, args.repeats)
        columns = COLUMNS
        table = Table(title=f"ms per clip, median of {args.repeats} (45 frames at 256x256, one process)")
        table.add_column("step")
        for path in paths:
            meta = decode(path, frames=1, size=8).meta
            table.add_column(f"{path.stem}\n{meta.width}x{meta.height}", justify="right")
        table.add_column("all", justify="right", style="cyan")
        everything = {c: [v for r in per_clip.values() for v in r[c]] for c in columns}
        for c in columns:
            table.add_row(
                c,
                *(f"{statistics.median(per_clip[p.stem][c]):.1f}" for p in paths),
                f"{statistics.median(everything[c]):.1f}",
                style="bold" if c in ("decode", "low total") else None,
            )
        console.print(table)

        results = Table(title=f"decode + low tier over {args.clips} clips (sample clips cycled)")
        results.add_column("measure")
        results.add_column("value", justify="right")
        results.add_column("target", justify="right")
        results.add_row(
            "decode 720p clip, ms", f"{statistics.median(per_clip[REFERENCE_720P]['decode']):.1f}", "<= 150"
        )
        results.add_row(
            "decode 720p clip, CPU ms (all threads)",
            f"{statistics.median(per_clip[REFERENCE_720P]['decode cpu']):.1f}",
            "",
        )
        results.add_row(
            "low tier, ms per clip (median)", f"{statistics.median(everything['low total']):.1f}", "<= 100"
        )
        results.add_row(
            "low tier, CPU ms per clip (median)", f"{statistics.median(everything['low total cpu']):.1f}", ""
        )
        with Progress(console=console, transient=True) as progress:
            rates = {}
            worker_rss = 0.0
            for n in (int(w) for w in args.workers.split(",")):
                rates[n], rss = throughput(paths, state, n, args.clips, progress)
                worker_rss = max(worker_rss, rss)
            rss_in_process = in_process_memory(paths, tier, args.clips, progress)
        for n, rate in rates.items():
            results.add_row(f"clips/s, {n} worker(s)", f"{rate:.2f}", "")
        if 1 in rates and 2 in rates:
            results.add_row("speed-up 2 vs 1 worker", f"{rates[2] / rates[1]:.2f}x", ">= 1.7x")
        results.add_row(
            f"peak RSS this process after {args.clips} clips, MiB", f"{rss_in_process:.0f}", "< 1024"
        )
        results.add_row("  (peak RSS before the runs, MiB)", f"{rss_start:.0f}", "")
        results.add_row("peak RSS largest worker, MiB", f"{worker_rss:.0f}", "< 1024")
        console.print(results)


if __name__ == "__main__":
    sys.exit(main())

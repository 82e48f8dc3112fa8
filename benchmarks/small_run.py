"""A small extraction run, whole process: fitting the low tier's PCA on the run's own clips, then
extracting them, timed from the call to the report (network loads and worker start-up counted).

The sample videos are cut into overlapping 3-s clips (`--step` seconds apart: 0.5 gives 26),
and each tier set is extracted with 1 and 2 workers into a fresh store.

    .venv/bin/python benchmarks/small_run.py [--step 0.5] [--tiers low low,mid]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tiermem.extraction import extract
from tiermem.run import Run
from tiermem.video.samples import make_sample_clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", type=float, default=0.5, help="seconds between the clips' starts")
    ap.add_argument("--tiers", nargs="+", default=["low", "low,mid"], help="tier sets, comma-separated")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = ap.parse_args()
    table = Table(title="small extraction run, whole process (fit + extract)")
    for column in ("tiers", "workers", "clips", "seconds", "clips/s"):
        table.add_column(column, justify="left" if column == "tiers" else "right")
    with tempfile.TemporaryDirectory(prefix="tiermem-small-run-") as tmp:
        clips = Path(tmp) / "clips"
        make_sample_clips(clips, step=args.step)
        for tiers in args.tiers:
            for workers in args.workers:
                out = Path(tmp) / f"{tiers}-{workers}"
                start = time.perf_counter()
                report = extract([clips], tiers=tiers.split(","), out=out, run=Run(workers=workers))
                seconds = time.perf_counter() - start
                if report.failed:
                    raise SystemExit(f"failures: {report.failed[:3]}")
                done = len(report.done)
                table.add_row(tiers, str(workers), str(done), f"{seconds:.1f}", f"{done / seconds:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()

"""Extraction engines side by side: clips per second of the low and mid tiers on the same clips
for `local --workers 1`, `local --workers 2`, and Ray (2 CPUs, 2 workers) on this machine;
then a two-node local Ray cluster (one CPU per node): its throughput, and the run again with
one node removed mid-run (the cost of recovering from the node loss).

Ray's start-up (cluster, actors' first network load) is timed apart and not counted: each Ray
figure is the second of two runs into fresh stores, with the actors of the first run gone, so
the workers' start-up (imports, network loads) is counted as it is for the local engine.

    .venv/bin/python benchmarks/extract_engines.py [--step 0.5] [--tiers low,mid]

Target on a 2-core machine: Ray at no less than 85% of the local 2-worker throughput.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tiermem.extraction import extract
from tiermem.run import Run
from tiermem.video.samples import make_sample_clips

console = Console()


def run(clips: Path, out: Path, tiers: list[str], **options: object) -> tuple[float, int]:
    start = time.perf_counter()
    report = extract([clips], tiers=tiers, out=out, **options)
    seconds = time.perf_counter() - start
    if report.failed:
        raise SystemExit(f"failures: {report.failed[:3]}")
    return seconds, len(report.done)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--step", type=float, default=0.5, help="seconds between the sample clips' starts (0.5: ~30 clips)"
    )
    ap.add_argument("--tiers", default="low,mid")
    args = ap.parse_args()
    tiers = args.tiers.split(",")
    import ray
    from ray.cluster_utils import Cluster

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="tiermem-engines-") as tmp:
        work = Path(tmp)
        clips = work / "clips"
        make_sample_clips(clips, step=args.step)
        n = len(list(clips.glob("*.mp4")))
        figures: dict[str, float] = {}
        for workers in (1, 2):
            seconds, done = run(clips, work / f"local{workers}", tiers, run=Run(workers=workers))
            figures[f"local{workers}"] = done / seconds
            rows.append((f"local --workers {workers}", f"{done / seconds:.2f} clips/s", f"{seconds:.1f} s"))

        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        rows.append(("Ray start-up (ray.init, 2 CPUs; not counted)", "", f"{time.perf_counter() - t:.1f} s"))
        run(clips, work / "ray_warm", tiers, run=Run(workers=2, engine="ray"))
        seconds, done = run(clips, work / "ray", tiers, run=Run(workers=2, engine="ray"))
        figures["ray"] = done / seconds
        share = figures["ray"] / figures["local2"]
        rows.append(
            (
                "ray, 2 workers of 1 CPU",
                f"{done / seconds:.2f} clips/s ({share:.0%} of local 2 workers; target >= 85%)",
                f"{seconds:.1f} s",
            )
        )
        ray.shutdown()

        t = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        rows.append(("two-node local cluster start-up (not counted)", "", f"{time.perf_counter() - t:.1f} s"))
        seconds, done = run(clips, work / "two_nodes", tiers, run=Run(workers=2, engine="ray"))
        rows.append(
            ("two-node cluster, 1 worker per node", f"{done / seconds:.2f} clips/s", f"{seconds:.1f} s")
        )
        other = next(node for node in cluster.list_all_nodes() if node is not cluster.head_node)
        removed: dict[str, float] = {}

        def remove() -> None:
            time.sleep(seconds / 3)
            cluster.remove_node(other)
            removed["at"] = time.perf_counter()

        thread = threading.Thread(target=remove, daemon=True)
        start = time.perf_counter()
        thread.start()
        lost_s, lost_done = run(clips, work / "node_lost", tiers, run=Run(workers=2, engine="ray"))
        thread.join()
        rows.append(
            (
                f"the same, second node removed {removed['at'] - start:.1f} s in",
                f"{lost_done / lost_s:.2f} clips/s, all {lost_done} clips stored",
                f"{lost_s:.1f} s",
            )
        )
        # Both nodes share this machine's two cores, so the surviving worker speeds up once the
        # other is gone: the time the loss cost is measured against the clean run, not modelled.
        rows.append(
            (
                "time the node loss cost (its tasks retried on the other node)",
                f"{lost_s - seconds:+.1f} s",
                f"{lost_s:.1f} vs {seconds:.1f} s",
            )
        )
        ray.shutdown()
        cluster.shutdown()

    table = Table(
        title=f"extraction engines: {n} sample clips of 3 s, tiers {'+'.join(tiers)}, {os.cpu_count()} CPUs"
    )
    for col in ("engine", "throughput", "wall"):
        table.add_column(col, justify="left" if col != "wall" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()

"""Load on `tiermem serve`, bounded and local: submit and status latency while the workers are
busy, jobs per minute for 3-s clips, and a count of errors (no 5xx is allowed).

Starts `tiermem serve` on 127.0.0.1 (a free port, a fresh data folder), then:

1. uploads N distinct 3-s clips (cut from the sample videos joined into one) from 20
   concurrent clients: the submit latency;
2. while the worker scores them, sends 200 status polls from 20 concurrent clients: the
   status latency with every worker busy;
3. waits for every job: jobs per minute, from the first upload to the last result;
4. uploads the first clip again: answered from the results, no scoring.

Everything stops by itself; the server is stopped at the end.

    .venv/bin/python benchmarks/serve_load.py [--model zero-shot] [--uploads 20] [--polls 200] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from tiermem.video.samples import copy_stretch, make_long_video

console = Console()


def cut_clips(work: Path, n: int, seconds: float = 3.0) -> list[Path]:
    """`n` distinct `seconds`-long clips: stream copies of a joined video with a keyframe each second."""
    joined = make_long_video(
        work / "joined.mp4", seconds=int(n * seconds) + 1, size=(640, 360), keyframe_every=25
    )
    clips = [copy_stretch(joined, work / f"clip_{k:03d}.mp4", k * seconds, seconds) for k in range(n)]
    return clips


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    q = statistics.quantiles(values, n=20) if len(values) > 1 else [values[0]] * 19
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms (n={len(values)})"


async def run(url: str, clips: list[Path], polls: int, clients: int) -> dict[str, object]:
    gate = asyncio.Semaphore(clients)
    errors: list[str] = []
    submit_s: list[float] = []
    status_s: list[float] = []
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:

        async def submit(path: Path) -> None:
            async with gate:
                t = time.perf_counter()
                r = await client.post(
                    "/v1/jobs",
                    files={"file": (path.name, path.read_bytes(), "video/mp4")},
                    data={"timeline": "false"},
                )
                submit_s.append(time.perf_counter() - t)
                if r.status_code != 202:
                    errors.append(f"submit {path.name}: {r.status_code} {r.text[:200]}")
                else:
                    ids.append(r.json()["jobs"][0]["id"])

        async def poll(job_id: str) -> None:
            async with gate:
                t = time.perf_counter()
                r = await client.get(f"/v1/jobs/{job_id}")
                status_s.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors.append(f"status: {r.status_code}")

        start = time.perf_counter()
        await asyncio.gather(*(submit(p) for p in clips))
        busy = (await client.get("/healthz")).json()
        await asyncio.gather(*(poll(ids[i % len(ids)]) for i in range(polls)))
        one_by_one: list[float] = []
        for i in range(50):  # one client alone, while the worker is busy
            t = time.perf_counter()
            r = await client.get(f"/v1/jobs/{ids[i % len(ids)]}")
            one_by_one.append(time.perf_counter() - t)
            if r.status_code != 200:
                errors.append(f"status: {r.status_code}")
        running = [(await client.get(f"/v1/jobs/{i}")).json()["status"] for i in ids].count("running")
        while True:
            states = [(await client.get(f"/v1/jobs/{i}")).json()["status"] for i in ids]
            if all(s in ("done", "failed") for s in states):
                break
            await asyncio.sleep(0.5)
        total = time.perf_counter() - start
        failed = states.count("failed")
        t = time.perf_counter()
        again = await client.post(
            "/v1/jobs",
            files={"file": (clips[0].name, clips[0].read_bytes(), "video/mp4")},
            data={"timeline": "false"},
        )
        cached_s = time.perf_counter() - t
        cached = again.status_code == 202 and again.json()["jobs"][0]["cached"]
    return {
        "submit": submit_s,
        "status": status_s,
        "one_by_one": one_by_one,
        "errors": errors,
        "total": total,
        "jobs": len(ids),
        "failed": failed,
        "pending_at_polls": busy["pending"],
        "running_after_polls": running,
        "cached_s": cached_s,
        "cached": cached,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="zero-shot")
    ap.add_argument("--uploads", type=int, default=20)
    ap.add_argument("--polls", type=int, default=200)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiermem-serve-load-") as tmp:
        work = Path(tmp)
        with console.status(f"cutting {args.uploads} distinct 3-s clips ..."):
            clips = cut_clips(work, args.uploads)
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from serving import Server  # the tests' helper: `tiermem serve` as a subprocess on a free port

        server = Server(args.model, work / "data", work / "server.log", workers=args.workers)
        with console.status("starting tiermem serve ..."):
            server.start()
            deadline = time.monotonic() + 120
            while httpx.get(f"{server.url}/v1/model").status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.5)  # the worker loads the model before the clock starts
        try:
            with console.status("load: uploads, status polls, waiting for every result ..."):
                found = asyncio.run(run(server.url, clips, args.polls, args.clients))
        finally:
            server.stop()
        log = (work / "server.log").read_text()
    server_errors = log.count(" 500 ") + log.count("Traceback")
    table = Table(
        title=f"tiermem serve under load: model {args.model}, {args.workers} worker(s), {os.cpu_count()} CPUs, "
        f"{args.clients} concurrent clients"
    )
    table.add_column("measure")
    table.add_column("result")
    table.add_row(
        f"submit latency ({found['jobs']} uploads of a 3-s 640x360 clip, ~0.3 MB)",
        percentiles(found["submit"]),
    )
    table.add_row(
        f"status latency, every worker busy ({found['pending_at_polls']} jobs pending, "
        f"{found['running_after_polls']} still running after the polls)",
        percentiles(found["status"]),
    )
    table.add_row("status latency, one client polling alone, worker busy", percentiles(found["one_by_one"]))
    table.add_row(
        "jobs per minute (first upload to last result)",
        f"{found['jobs'] / found['total'] * 60:.1f} "
        f"({found['jobs']} jobs in {found['total']:.1f} s, {found['failed']} failed)",
    )
    table.add_row(
        "identical upload answered from the results",
        f"{found['cached_s'] * 1000:.0f} ms (cached: {found['cached']})",
    )
    table.add_row(
        "errors (non-2xx answers, 5xx or tracebacks in the server log)",
        f"{len(found['errors']) + server_errors}",
    )
    console.print(table)
    for e in found["errors"][:10]:
        console.print(f"[red]{e}[/]")
    if found["errors"] or server_errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

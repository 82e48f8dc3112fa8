"""Worker processes: each loads the model once, then takes queued jobs from the database.

Scoring never runs in the web process: its event loop keeps answering while every worker is
busy. The pool starts `python -m tiermem.serve.worker` processes, starts again any that ends,
and queues again (at most `MAX_ATTEMPTS` times) the job a dead worker held. On Linux a worker
dies with the server (PR_SET_PDEATHSIG), so a killed server leaves no orphan scoring on.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from tiermem.serve.jobs import JobStore
from tiermem.serve.settings import ServeSettings
from tiermem.serve.uploads import stored_path

#: Seconds an idle worker waits before looking at the queue again.
POLL_S = 0.2
#: Seconds between two progress writes of one job.
PROGRESS_EVERY_S = 0.5
#: Workers yield the CPU to the web process, which must answer status requests at once
#: while every worker is busy (the scoring is slowed only by what the web process uses).
WORKER_NICENESS = 10


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when the process that started it ends (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def score_job(model: Any, settings: ServeSettings, store: JobStore, job: dict[str, Any]) -> None:
    """Score one claimed job and store its result (the JSON of `tiermem predict --json`)."""
    from tiermem.errors import TiermemError
    from tiermem.predictions import jsonable
    from tiermem.progress import listening

    opts = job["options"]
    path = stored_path(settings.uploads, job["video_hash"])
    last = [0.0]

    def on_progress(share: float) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            store.progress(job["id"], share)

    try:
        with listening(on_progress):
            pred = model.predict(path, timeline=opts.get("timeline"), window=opts.get("window"), stride=opts.get("stride"),
                                 missing="keep", progress=False)
    except TiermemError as exc:
        store.finish(job["id"], None, str(exc).replace(str(path), job["filename"]), keep=False)
        return
    except Exception as exc:  # noqa: BLE001 - a job fails in words; the worker lives on
        traceback.print_exc()
        store.finish(job["id"], None, f"internal error while scoring: {type(exc).__name__}: {exc}".splitlines()[0], keep=False)
        return
    records = jsonable(pred.records())
    for rec in records:  # the stored file is named by its hash: show the client's name instead
        rec["video_id"], rec["path"] = Path(job["filename"]).stem, job["filename"]
    error = "; ".join(reason for _, reason in pred.failed) or None
    store.finish(job["id"], records, error, keep=error is None)


def run(settings: ServeSettings) -> None:
    """The worker's loop: load the model, record its card, score jobs until the server ends."""
    from tiermem import load
    from tiermem.card import model_card
    from tiermem.runtime import set_threads

    _die_with_parent()
    os.nice(WORKER_NICENESS)
    parent = os.getppid()
    set_threads(settings.threads_per_worker)
    store = JobStore(settings.database, settings.model_key())
    model = load(settings.model)
    store.set_meta("card", json.dumps(model_card(model, name=settings.model_name)))
    while os.getppid() == parent:  # the server is alive
        job = store.claim(os.getpid())
        if job is None:
            time.sleep(POLL_S)
        elif not job["done"]:
            score_job(model, settings, store, job)


class WorkerPool:
    """`settings.workers` worker processes, restarted when they end, watched by one thread."""

    def __init__(self, settings: ServeSettings, store: JobStore) -> None:
        self.settings, self.store = settings, store
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watch_loop, name="tiermem-worker-pool", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "tiermem.serve.worker", json.dumps(self.settings.to_dict())]
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        self.store.set_meta("card", None)  # until a worker has loaded this model
        for pid in self.store.recover():  # jobs of a server that was killed: back in the queue
            _kill_if_worker(pid)
        self.procs = [self._spawn() for _ in range(self.settings.workers)]
        self._watch.start()

    def _watch_loop(self) -> None:
        while not self._stop.wait(0.5):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stop.is_set():
                    self.store.worker_died(proc.pid)
                    self.store.set_meta("worker_exit", f"a worker ended with code {proc.returncode}; started again")
                    self.procs[i] = self._spawn()

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for proc in self.procs:  # a job cut short by the shutdown is scored again next start
            self.store.worker_died(proc.pid)


def _kill_if_worker(pid: int) -> None:
    """SIGKILL `pid` if it is still a tiermem worker (left by a server killed without PDEATHSIG)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"tiermem.serve.worker" in cmdline:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A tiermem serve worker (started by `tiermem serve`).")
    parser.add_argument("settings", help="the server's settings as JSON")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(ServeSettings.from_dict(json.loads(args.settings)))


if __name__ == "__main__":
    main()

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
    from tiermem.extraction.run import HASHING
    from tiermem.predictions import jsonable
    from tiermem.run import Run, Step

    opts = job["options"]
    path = stored_path(settings.uploads, job["video_hash"])
    pid = os.getpid()
    last = [0.0]

    def on_progress(step: Step) -> None:
        """The share of the scoring done: the extraction's or the timeline's, not the file's hashing."""
        now = time.monotonic()
        if step.stage != HASHING and now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            store.progress(job["id"], pid, step.share)

    def in_words(reason: str) -> str:
        """One line naming the client's file, never where the server stored it."""
        return (reason.splitlines() or ["?"])[0].replace(str(path), job["filename"])

    try:
        run = Run(device=settings.device, on_progress=on_progress)
        pred = model.predict(
            path,
            timeline=opts.get("timeline"),
            window=opts.get("window"),
            stride=opts.get("stride"),
            run=run,
            missing="keep",
        )
    except TiermemError as exc:
        store.finish(job["id"], pid, None, in_words(str(exc)), keep=False)
        return
    except Exception as exc:  # noqa: BLE001 - a job fails in words; the worker lives on
        traceback.print_exc()
        store.finish(
            job["id"],
            pid,
            None,
            in_words(f"internal error while scoring: {type(exc).__name__}: {exc}"),
            keep=False,
        )
        return
    error = "; ".join(in_words(reason) for _, reason in pred.failed) or None
    store.finish(job["id"], pid, jsonable(pred.records()), error, keep=error is None)


def run(settings: ServeSettings, server: int) -> None:
    """The worker's loop: load the model, record its card, score jobs while the server process
    `server` lives."""
    from tiermem import load
    from tiermem.card import model_card
    from tiermem.runtime import set_threads

    _die_with_parent()
    if os.getppid() != server:  # the server ended before the request took effect
        return
    os.nice(WORKER_NICENESS)
    parent = server
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
    """`settings.workers` worker processes, restarted when they end (waiting longer each time
    one ends quickly: a model that cannot load), watched by one thread."""

    def __init__(self, settings: ServeSettings, store: JobStore) -> None:
        self.settings, self.store = settings, store
        self.procs: list[subprocess.Popen[bytes]] = []
        self.last_exit: str | None = None  # why the last worker that ended did, for /healthz
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watch_loop, name="tiermem-worker-pool", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        shared = {**self.settings.to_dict(), "api_key": None}  # workers need no key; argv is visible to all
        cmd = [sys.executable, "-m", "tiermem.serve.worker", json.dumps(shared), str(os.getpid())]
        # A session of its own: Ctrl-C at the server's terminal stops the server, which stops its workers.
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)

    def start(self) -> None:
        self.store.set_meta("card", None)  # until a worker has loaded this model
        for pid in self.store.recover():  # jobs of a server that was killed: back in the queue
            _kill_if_worker(pid)
        self.procs = [self._spawn() for _ in range(self.settings.workers)]
        self._watch.start()

    def _watch_loop(self) -> None:
        started = [time.monotonic()] * len(self.procs)
        quick = [0] * len(self.procs)  # ends in a row within a minute of starting
        while not self._stop.wait(0.5):
            for i, proc in enumerate(self.procs):
                if proc.poll() is None or self._stop.is_set():
                    continue
                try:
                    self.store.worker_died(proc.pid)
                    self.last_exit = f"a worker ended with exit code {proc.returncode}"
                    quick[i] = quick[i] + 1 if time.monotonic() - started[i] < 60 else 0
                    if self._stop.wait(min(30.0, 0.5 * 2 ** quick[i]) if quick[i] else 0.0):
                        return
                    self.procs[i], started[i] = self._spawn(), time.monotonic()
                except Exception:  # noqa: BLE001 - the watch must outlive one failed restart
                    traceback.print_exc()

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        self._stop.set()
        if self._watch.is_alive():
            self._watch.join(timeout=5)
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for proc in self.procs:  # a job cut short by the shutdown is scored again next start
            self.store.release(proc.pid)


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
    parser.add_argument("server", type=int, help="the server's process id: the worker ends with it")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(ServeSettings.from_dict(json.loads(args.settings)), args.server)


if __name__ == "__main__":
    main()

"""Worker processes of one extraction run: a worker's death costs only its own task, and no
worker outlives the run.

`WorkerPool` wraps a `ProcessPoolExecutor` (forkserver start method: workers start from a clean
process, with no copied locks or thread pools, but fast):

* *A worker dies* (the kernel's OOM killer sends SIGKILL; a decoder crashes): the executor
  fails every unfinished task and stops the other workers with SIGTERM. Each task tells the
  calling process which worker took it, so the pool finds the tasks that ran on the worker
  that died by itself (exit status other than that SIGTERM), returns them as `WorkerDied`,
  and hands every other unfinished task to a fresh executor.
* *The calling process dies* (SIGKILL, SIGTERM, a crash): each worker asks the kernel for
  SIGKILL when the forkserver that forked it ends (the forkserver ends when the calling
  process does), and a thread in each worker also watches the calling process itself and
  ends the worker when it is gone, so nothing keeps running on its own.
* *The run stops on an error* (or Ctrl-C): the workers are terminated at once instead of
  finishing their tasks.
"""

from __future__ import annotations

import collections
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from tiermem.errors import TiermemError
from tiermem.runtime import set_threads

START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
#: Pool restarts in a row that find no task to blame before the run gives up.
MAX_UNEXPLAINED_RESTARTS = 3
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerDied:
    """The result of a task whose worker process died while running it."""

    reason: str


def death_reason(exitcode: int) -> str:
    """What a worker's exit status says, for the failure list (SIGKILL is what the OOM killer sends)."""
    if exitcode == -signal.SIGKILL:
        return "worker process died (out of memory?)"
    if exitcode < 0:
        return f"worker process died ({signal.Signals(-exitcode).name})"
    return f"worker process died (exit status {exitcode})"


# -- worker-process side ---------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def worker_state() -> dict[str, Any]:
    """This worker's settings (decode options, threads) and what its tasks keep between calls."""
    return _WORKER


def _init_worker(decode_options: dict[str, Any], threads: int, started: Any) -> None:
    _end_with_the_run()
    set_threads(threads)
    _WORKER.update(decode_options=decode_options, threads=threads, started=started)


def _end_with_the_run() -> None:
    """End this worker when the process that started the run is gone, whatever killed it."""
    if sys.platform == "linux":
        forkserver = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != forkserver:  # it ended before the request took effect
            os._exit(1)
    parent = multiprocessing.parent_process()
    if parent is not None:
        sentinel = parent.sentinel

        def watch() -> None:
            wait_for([sentinel])
            os._exit(1)

        threading.Thread(target=watch, name="tiermem-parent-watch", daemon=True).start()


def _task(number: int, fn: Callable[..., Any], *args: Any) -> Any:
    _WORKER["started"].put((number, os.getpid()))
    return fn(*args)


# -- calling-process side --------------------------------------------------------------------


class WorkerPool:
    """`size` worker processes that decode and extract; a context manager ending them with the run."""

    def __init__(self, size: int, decode_options: dict[str, Any], threads: int) -> None:
        self.size = size
        self._context = multiprocessing.get_context(START_METHOD)
        self._settings = (dict(decode_options), threads)
        self._executor: ProcessPoolExecutor | None = None
        self._started: Any = None  # queue of (task number, worker pid), one per task begun
        self._processes: dict[int, BaseProcess] = {}
        self._numbers = iter(range(sys.maxsize))

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._executor is None:
            return
        if kind is not None:  # stopping on an error or an interrupt: do not wait for running tasks
            for process in self._processes.values():
                if process.exitcode is None:
                    process.terminate()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Future[Any], int]:
        if self._executor is None:
            self._started = self._context.SimpleQueue()
            self._executor = ProcessPoolExecutor(
                max_workers=self.size,
                mp_context=self._context,
                initializer=_init_worker,
                initargs=(*self._settings, self._started),
            )
        number = next(self._numbers)
        future = self._executor.submit(_task, number, fn, *args)
        # Workers start on demand; remember each (a dead one leaves `active_children`).
        self._processes.update((p.pid, p) for p in multiprocessing.active_children() if p.pid is not None)
        return future, number

    def imap(
        self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], ahead: int
    ) -> Iterator[tuple[int, Any]]:
        """(index, fn(*args[index])) as tasks finish, at most `ahead` in flight.

        A task whose worker died yields a `WorkerDied` instead of its result; the tasks that
        were cut short by that death run again on a fresh set of workers.
        """
        todo = collections.deque(range(len(args)))
        running: dict[Future[Any], tuple[int, int]] = {}  # future -> (index, task number)
        unexplained = 0
        while todo or running:
            while todo and len(running) < ahead:
                index = todo.popleft()
                future, number = self._submit(fn, args[index])
                running[future] = (index, number)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            if not any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                for future in done:
                    yield running.pop(future)[0], future.result()
                continue
            died = self._restart()
            retry = []
            for future, (index, number) in sorted(running.items(), key=lambda item: item[1]):
                if not isinstance(future.exception(), BrokenProcessPool):
                    yield index, future.result()
                elif number in died:
                    yield index, WorkerDied(died[number])
                else:
                    retry.append(index)
            running.clear()
            todo.extendleft(reversed(retry))
            unexplained = 0 if died else unexplained + 1
            if unexplained >= MAX_UNEXPLAINED_RESTARTS:
                raise TiermemError(
                    f"worker processes keep dying before they finish a task ({MAX_UNEXPLAINED_RESTARTS} times in a "
                    "row); run with --workers 1 to see why"
                )

    def _restart(self) -> dict[int, str]:
        """After a worker died: the numbers of the tasks that ran on it, with the reason; a fresh pool next."""
        assert self._executor is not None
        self._executor.shutdown(
            wait=True
        )  # the executor has failed every unfinished task and stopped the others
        self._executor = None
        took: dict[int, int] = {}
        while not self._started.empty():
            number, pid = self._started.get()
            took[number] = pid
        died: dict[int, str] = {}
        for number, pid in took.items():
            process = self._processes.get(pid)
            code = process.exitcode if process is not None else None
            if code is not None and code != -signal.SIGTERM:  # SIGTERM: stopped by the executor
                died[number] = death_reason(code)
        self._processes = {pid: p for pid, p in self._processes.items() if p.exitcode is None}
        return died

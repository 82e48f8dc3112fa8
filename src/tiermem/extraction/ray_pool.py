"""Extraction workers on a Ray cluster: the same `imap` as `WorkerPool`, run by Ray actors.

Each actor is one worker process on some node of the cluster. It keeps its decode settings
and, once built, its tiers (networks loaded once per actor); it decodes its videos, runs every
requested tier and sends back only feature rows. The calling process (the driver) alone writes
the feature store, exactly as with local workers, so rows are the same and a killed run
resumes from the store.

Faults, handled here rather than by Ray's own task retries so that one video can never be
retried forever:

* an actor that dies (its process killed, its node removed) fails the tasks it held; each is
  sent again to a live actor, at most `MAX_TRIES` times, then reported as `WorkerDied`;
* a dead actor is replaced; a replacement gets work only once Ray has placed and started it
  (on a mixed or shrinking cluster it may wait for resources);
* a video that cannot be decoded is an ordinary failure inside the task: never retried.

Input and output paths must be readable by every node (a shared filesystem).
"""

from __future__ import annotations

import collections
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

from tiermem.errors import TiermemError
from tiermem.extraction.pool import WorkerDied, worker_state
from tiermem.runtime import set_threads

#: Times one task is sent to a worker before its videos are reported as failed.
MAX_TRIES = 3
#: Tasks in flight per actor: one running, one waiting, so no actor idles between tasks.
PER_ACTOR = 2
#: Seconds the run waits with work left but no worker started before it gives up.
START_TIMEOUT_S = 300.0
#: Seconds to fetch a finished task's result. A result kept in the object store of a node that
#: was removed after the task ended is never fetched (ray.get waits for ever); past this the task
#: counts as lost with its worker and runs again elsewhere.
FETCH_TIMEOUT_S = 60.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise TiermemError("--engine ray needs Ray: pip install 'tiermem[ray]'") from None
    return ray


#: Seconds to wait for a Ray cluster's port to answer before giving up on it.
CONNECT_TIMEOUT_S = 10.0


def _answers(address: str) -> None:
    """Refuse in one line, within seconds, a cluster address whose port does not answer (Ray
    itself retries such an address for many minutes)."""
    from tiermem.run import cluster_endpoint

    endpoint = cluster_endpoint(address)
    if endpoint is None:
        raise TiermemError(f"--ray-address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection(endpoint, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise TiermemError(
            f"no Ray cluster answers at {address} ({exc.strerror or type(exc).__name__}): start one with `ray start --head`"
        ) from None


class _Worker:
    """The actor: a worker process holding decode settings and, once built, the tiers."""

    def __init__(self, decode_options: dict[str, Any], threads: int) -> None:
        import ray

        set_threads(threads)
        worker_state().update(decode_options=decode_options, threads=threads, fetch=ray.get)

    def pid(self) -> int:
        return os.getpid()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


class RayPool:
    """`size` Ray actors of `cpus` CPUs (and `gpus` GPUs) each; ended with the run."""

    def __init__(
        self,
        size: int,
        decode_options: dict[str, Any],
        threads: int,
        address: str | None = None,
        cpus: float | None = None,
        gpus: float = 0.0,
    ) -> None:
        self.ray = import_ray()
        self.size = size
        self._settings = (dict(decode_options), threads)
        self._address = address
        self._resources = {"num_cpus": cpus if cpus is not None else threads, "num_gpus": gpus}
        self._actors: dict[Any, Any] = {}  # actor -> its `pid` call while not yet ready, else None
        self._cls: Any = None
        self._start_failures = 0  # workers in a row that died before their first answer
        self._started_ray = False

    def __enter__(self) -> "RayPool":
        ray = self.ray
        if not ray.is_initialized():
            if self._address not in (None, "auto"):
                _answers(self._address)
            try:
                ray.init(
                    address=self._address,
                    include_dashboard=False,
                    configure_logging=False,
                    log_to_driver=False,
                    ignore_reinit_error=True,
                )
            except ConnectionError as exc:
                raise TiermemError(f"cannot reach the Ray cluster at {self._address}: {exc}") from None
            except ValueError as exc:  # a ray:// address without the Ray Client installed
                if "ray[client]" not in str(exc):
                    raise
                raise TiermemError(
                    f"--ray-address {self._address}: the Ray Client is not installed: pip install 'tiermem[ray]'"
                ) from None
            self._started_ray = True
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors.clear()
        if self._started_ray:
            self.ray.shutdown()

    def share(self, value: Any) -> Any:
        """Put `value` in the cluster's object store once; tasks carry the reference."""
        return self.ray.put(value)

    def _new_actor(self) -> None:
        if self._cls is None:
            self._cls = self.ray.remote(max_restarts=0, max_task_retries=0, **self._resources)(_Worker)
        actor = self._cls.remote(*self._settings)
        self._actors[actor] = actor.pid.remote()

    def _ready(self) -> list[Any]:
        """Actors that have started (their first call answered)."""
        pending = {ref: actor for actor, ref in self._actors.items() if ref is not None}
        if pending:
            done, _ = self.ray.wait(list(pending), num_returns=len(pending), timeout=0)
            for ref in done:
                actor = pending[ref]
                try:
                    self.ray.get(ref)
                    self._actors[actor] = None
                except self.ray.exceptions.RayError as err:  # died while starting: replace it, a few times
                    del self._actors[actor]
                    self.ray.kill(actor)
                    self._start_failures += 1
                    if self._start_failures >= MAX_TRIES:
                        raise TiermemError(
                            f"Ray workers fail as they start ({MAX_TRIES} in a row): {_cause(err)} "
                            "(is tiermem installed on every node?)"
                        ) from None
                    self._new_actor()
                    continue
                self._start_failures = 0
        return [a for a, ref in self._actors.items() if ref is None]

    def imap(
        self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], ahead: int
    ) -> Iterator[tuple[int, Any]]:
        """(index, fn(*args[index])) as tasks finish; a task whose worker kept dying yields `WorkerDied`."""
        ray = self.ray
        while len(self._actors) < self.size:
            self._new_actor()
        todo = collections.deque(range(len(args)))
        tries = collections.Counter[int]()
        running: dict[Any, tuple[int, Any]] = {}  # task ref -> (index, actor)
        inflight: dict[Any, collections.deque[int]] = collections.defaultdict(
            collections.deque
        )  # actor -> indices, oldest first
        blamed: dict[Any, int] = {}  # dead actor -> the task it was running (the others only waited)
        stalled_since: float | None = None
        while todo or running:
            ready = self._ready()
            if ready or running:
                stalled_since = None
            elif stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > START_TIMEOUT_S:
                raise TiermemError(
                    f"no Ray worker started within {START_TIMEOUT_S:.0f} s: the cluster has no room for "
                    f"a worker of {self._resources['num_cpus']:g} CPU(s) and {self._resources['num_gpus']:g} "
                    "GPU(s) (ray status)"
                )
            load = collections.Counter(actor for _, actor in running.values())
            for actor in sorted(ready, key=lambda a: load[a]):
                while todo and load[actor] < PER_ACTOR and len(running) < max(1, ahead):
                    index = todo.popleft()
                    tries[index] += 1
                    running[actor.call.remote(fn, *args[index])] = (index, actor)
                    inflight[actor].append(index)
                    load[actor] += 1
            waiting = list(running) + [r for r in self._actors.values() if r is not None]
            if not waiting:
                raise TiermemError("no Ray worker could start: check the cluster's free CPUs (ray status)")
            done, _ = ray.wait(waiting, num_returns=1, timeout=5.0)
            for ref in done:
                if ref not in running:
                    continue  # an actor became ready: taken up on the next turn
                index, actor = running.pop(ref)
                try:
                    result = ray.get(ref, timeout=FETCH_TIMEOUT_S)
                except ray.exceptions.RayTaskError as err:  # the task itself raised: the run stops
                    if isinstance(err.cause, TiermemError):
                        raise err.cause from None  # weights that cannot load, a device refused: one line
                    raise
                except ray.exceptions.RayError as err:  # its worker died: the actor, its process or its node
                    if actor in self._actors:  # dead: replace it; its other tasks fail the same way
                        del self._actors[actor]
                        self.ray.kill(actor)
                        blamed[actor] = inflight[actor][0]
                        self._new_actor()
                    inflight[actor].remove(index)
                    if index != blamed.get(actor, index):
                        tries[index] -= 1  # it only waited behind the task that died: not its fault
                    if tries[index] >= MAX_TRIES:
                        yield (
                            index,
                            WorkerDied(
                                f"worker process died {MAX_TRIES} times on this batch ({_cause(err)})"
                            ),
                        )
                    else:
                        todo.appendleft(index)
                    continue
                inflight[actor].remove(index)
                yield index, result


def _cause(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


__all__ = ["MAX_TRIES", "RayPool", "import_ray"]

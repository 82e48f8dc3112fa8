"""The run context: where a call's work runs and who hears about it, decided once.

    >>> from tiermem.run import Run
    >>> steps = []
    >>> run = Run(workers=1, device="cpu", on_progress=steps.append)
    >>> report = tiermem.extract([video], tiers=["low"], out=f"{out}/features", frames=9, size=128, run=run)
    >>> steps[-1].share
    1.0
    >>> tiermem.load("zero-shot").predict(video, run=run).table.columns.tolist()
    ['video_id', 'path', 'score', 'percentile']

The CLI, the Python API and the HTTP service's workers each build one `Run` and hand it down,
unchanged, to the extraction engine and the timelines: nothing below them takes loose
``workers=``, ``engine=`` or ``device=`` arguments. The device the networks run on is resolved
here and only here (`Run.network_device`), once per run, so clips, timelines, text embeddings
and the M3-S head's training all run where the caller asked.

Library code reports progress as `Step` events and remarks as notes (`Run.progress`,
`Run.note`); it never prints. The CLI turns them into rich progress bars and lines, the service
into a job's progress; without callbacks, steps are dropped and notes go to the ``tiermem``
logger (warnings at WARNING, the rest at INFO).

`Engine` says where extraction's workers run: `local` (processes on this machine) or `ray` (a
Ray cluster, with its address and each worker's CPU and GPU request):

    Run(workers=16, engine=Engine("ray", address="ray://head:10001", gpus_per_worker=1))
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from tiermem.device import DEVICES, resolve_device
from tiermem.errors import TiermemError

if TYPE_CHECKING:
    from tiermem.tiers.base import Tier

log = logging.getLogger("tiermem")

T = TypeVar("T")

#: The engines `Engine.name` takes.
ENGINES = ("local", "ray")


def cluster_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray address ``HOST:PORT`` or ``ray://HOST:PORT``; None if it is neither."""
    match = re.fullmatch(r"(?:ray://)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})", address)
    if match is None or not 0 < int(match.group(2)) < 65536:
        return None
    return match.group(1).strip("[]"), int(match.group(2))


@dataclass(frozen=True)
class Engine:
    """An engine and, for Ray, the cluster and each worker's resource request."""

    name: str = "local"
    address: str | None = None  # Ray: "auto", "ray://HOST:10001", or None for a local cluster
    cpus_per_worker: float = 1.0  # Ray: CPUs each worker asks for (and its threads)
    gpus_per_worker: float = 0.0  # Ray: GPUs each worker asks for

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise TiermemError(f"--engine must be one of {', '.join(ENGINES)}, got {self.name!r}")
        if not self.cpus_per_worker > 0:
            raise TiermemError(f"--cpus-per-worker must be positive, got {self.cpus_per_worker:g}")
        if not self.gpus_per_worker >= 0:
            raise TiermemError(f"--gpus-per-worker must be 0 or more, got {self.gpus_per_worker:g}")
        if self.name == "local" and (self.address or self.gpus_per_worker):
            raise TiermemError("--ray-address and --gpus-per-worker apply to --engine ray only")
        if self.address is not None and self.address != "auto" and cluster_endpoint(self.address) is None:
            raise TiermemError(
                f"--ray-address {self.address!r}: expected auto, HOST:PORT or ray://HOST:PORT (e.g. ray://head:10001)"
            )


@dataclass(frozen=True)
class Step:
    """Progress of one stage of a run: `done` of `total` `unit` ("videos", "s" of video, ...)."""

    stage: str
    done: float
    total: float
    unit: str = "videos"
    detail: str = ""  # shown beside the stage: "3 failed", "epoch 4 · val ρ 0.512"

    @property
    def share(self) -> float:
        """How much of the stage is done, from 0 to 1."""
        return min(1.0, max(0.0, self.done / self.total)) if self.total > 0 else 1.0


#: Called with each `Step` of a run.
ProgressCallback = Callable[[Step], None]
#: Called with each remark of a run and whether it is a warning.
NoteCallback = Callable[[str, bool], None]


class KeptWorkers:
    """The worker pools an entered `Run` keeps between calls, by their settings."""

    def __init__(self) -> None:
        self.depth = 0  # how many times the run was entered again inside its own block
        self._pools: dict[Hashable, tuple[AbstractContextManager[Any], Any]] = {}

    def get(self, key: Hashable, start: Callable[[], AbstractContextManager[Any]]) -> Any:
        if key not in self._pools:
            manager = start()
            self._pools[key] = (manager, manager.__enter__())
        return self._pools[key][1]

    def drop(self, key: Hashable, exc: BaseException) -> None:
        """End the pool `key` after a call failed with `exc` (its workers are stopped at once)."""
        manager, _ = self._pools.pop(key, (None, None))
        if manager is not None:
            manager.__exit__(type(exc), exc, exc.__traceback__)

    def close(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        while self._pools:
            _, (manager, _) = self._pools.popitem()
            manager.__exit__(kind, exc, tb)


@dataclass(frozen=True)
class Run:
    """Where and how a call's work runs.

    `workers`: extraction worker processes (local) or actors (Ray); each uses cores / workers
    threads. `engine`: "local" or "ray", or an `Engine` with the cluster's address and each
    worker's resource request. `device`: where the networks run (auto: CUDA when torch sees a
    GPU). `batch`: videos per worker task. `on_progress` and `on_note`: see the module.

    `device_stage`: whether one owner of the device runs every network tier on clips gathered
    across videos, `device_batch` clips at most per batch, while the workers only decode and
    run the low tier (`tiermem.extraction.device_stage`). None (the default): when the
    networks run on a GPU, where per-worker networks would each hold the GPU with small
    batches, and in a run of one local process, where the networks then overlap decoding; with
    several CPU workers each runs its own networks, which keeps every core busy.

    Used as a context manager, a run keeps its workers warm between calls: they start on the
    first call that needs them, keep their networks loaded, and end with the block (a cold
    worker costs seconds)::

        with Run(workers=4) as run:
            model.predict(first_batch, run=run)
            model.predict(second_batch, run=run)   # the same worker processes
    """

    workers: int = 1
    engine: Engine | str = "local"
    device: str = "auto"
    batch: int = 8
    device_stage: bool | None = None
    device_batch: int = 32
    on_progress: ProgressCallback | None = field(default=None, compare=False, repr=False)
    on_note: NoteCallback | None = field(default=None, compare=False, repr=False)
    _kept: "KeptWorkers | None" = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.engine, Engine):
            object.__setattr__(self, "engine", Engine(self.engine))
        if self.workers < 1 or self.batch < 1 or self.device_batch < 1:
            raise TiermemError(
                f"workers, batch size and device batch must be >= 1 (got {self.workers}, {self.batch}, "
                f"{self.device_batch})"
            )
        if self.device not in DEVICES:
            raise TiermemError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        engine = self.cluster
        if engine.name == "ray" and self.device == "cuda" and not engine.gpus_per_worker:
            raise TiermemError(
                "--device cuda on Ray needs --gpus-per-worker (a worker sees no GPU it did not ask for)"
            )

    def __enter__(self) -> "Run":
        if self._kept is None:
            object.__setattr__(self, "_kept", KeptWorkers())
        else:  # entered again inside its own block: the outer block keeps the workers
            self._kept.depth += 1
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        kept = self._kept
        if kept is None:
            return
        if kept.depth:
            kept.depth -= 1
            return
        object.__setattr__(self, "_kept", None)
        kept.close(kind, exc, tb)

    def __getstate__(self) -> dict[str, object]:
        # A run sent to another process carries its settings, not this process's workers.
        return {k: v for k, v in self.__dict__.items() if k != "_kept"}

    @contextmanager
    def workers_for(self, key: Hashable, start: Callable[[], AbstractContextManager[T]]) -> Iterator[T]:
        """A pool of workers for one call: the run's kept pool for `key` when the run is entered
        (started by `start` on first use), else a new one that ends with the call. A call that
        fails ends a kept pool too, so a later call never meets tasks left over from it."""
        if self._kept is None:
            with start() as pool:
                yield pool
            return
        pool = self._kept.get(key, start)
        try:
            yield pool
        except BaseException as exc:
            self._kept.drop(key, exc)
            raise

    @classmethod
    def of(cls, run: "Run | None") -> "Run":
        """`run`, or the default run (one local process, networks on CUDA when there)."""
        return run if run is not None else cls()

    def but(self, **changes: object) -> "Run":
        """This run with some fields changed (the device is resolved again if it changed)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def cluster(self) -> Engine:
        """The engine, as an `Engine` (the constructor takes its name too)."""
        assert isinstance(self.engine, Engine)
        return self.engine

    @cached_property
    def network_device(self) -> str:
        """ "cpu" or "cuda": where this run's networks run, resolved once.

        Locally, what `device` resolves to on this machine. On Ray a worker sees a GPU only when
        it asks for one (Ray hides the others), so there auto means CUDA exactly when the engine
        asks for GPUs. Resolving auto imports torch: ask only when a network is about to run.
        """
        engine = self.cluster
        if engine.name == "ray":
            return "cuda" if self.device != "cpu" and engine.gpus_per_worker else "cpu"
        return resolve_device(self.device)

    def device_for(self, tiers: Iterable[Tier]) -> str:
        """Where `tiers` run their device work. With a network among them, `network_device` (torch
        is loaded for the network anyway). Without one (the low tier alone), the CPU unless CUDA
        was asked for by name: looking for a GPU loads torch, about 650 MiB a process that a
        low-tier run otherwise never pays, and the low tier's CPU path is the faster there."""
        tiers = list(tiers)
        if any(t.runs_network for t in tiers) or (
            self.device == "cuda" and any(t.uses_device for t in tiers)
        ):
            return self.network_device
        return "cpu"

    def stages_networks(self, device: str) -> bool:
        """Whether a device stage runs the networks (on `device`, as `device_for` gave it): by
        default on a GPU, and in a run of one local process, where the stage's thread runs the
        networks while this one decodes and runs the low tier."""
        if self.device_stage is not None:
            return self.device_stage
        return device != "cpu" or (self.workers == 1 and self.cluster.name == "local")

    def progress(self, stage: str, done: float, total: float, unit: str = "videos", detail: str = "") -> None:
        """Report that `done` of `total` of `stage` is done."""
        if self.on_progress is not None:
            self.on_progress(Step(stage, float(done), float(total), unit, detail))

    def note(self, line: str, *, warning: bool = False) -> None:
        """A remark for whoever runs the call: a stage beginning, a file set aside, a summary."""
        if self.on_note is not None:
            self.on_note(line, warning)
        else:
            log.log(logging.WARNING if warning else logging.INFO, line)


__all__ = ["ENGINES", "Engine", "NoteCallback", "ProgressCallback", "Run", "Step"]

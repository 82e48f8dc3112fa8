"""The work done per batch of videos, in a worker process or in the calling one.

Each video of a batch is decoded once (the next one while the tiers work on the current) and
its `Clip` given to every tier that still needs it, through ``tier.transform_batch``. Outcomes
(values, facts, reasons of failure) go back to the calling process, which alone checks them and
writes the store (`record`).

Workers find these functions by module path (a process pool pickles them by qualified name),
so everything a worker runs stays at module level here. The pool itself (start-up, a worker's
death, the end of the run) is `tiermem.extraction.pool`.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tiermem.errors import MissingWeightsError, TiermemError, VideoDecodeError
from tiermem.extraction.device_stage import DeviceStage, StageResult
from tiermem.extraction.pool import WorkerDied, WorkerPool, worker_state
from tiermem.extraction.report import ExtractReport
from tiermem.store import FeatureRow, FeatureStore
from tiermem.tiers import Tier, get_tier
from tiermem.video import Clip, decode

if TYPE_CHECKING:
    from tiermem.extraction.ray_pool import RayPool


@dataclass
class Job:
    path: str
    video_id: str
    content_hash: str
    tiers: list[str]  # the tiers this video still needs
    #: Tiers fitted on this video's own pass (`Tier.defer`), with the frames it gives each fit
    #: (None: the tier's own number).
    defer: dict[str, int | None] = field(default_factory=dict)


@dataclass
class _Outcome:
    job: Job
    values: dict[str, np.ndarray] = field(default_factory=dict)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    deferred: dict[str, Any] = field(
        default_factory=dict
    )  # by tier: `Tier.defer`'s work, completed after the fit
    errors: list[str] = field(default_factory=list)
    #: The decoded clip, kept for a device stage that still runs tiers on it (else None).
    clip: Clip | None = None
    device_batch: int = 0  # clips in the device stage's batch this video ran in (0: none)


def _reason(exc: TiermemError) -> str:
    """The cause without the path (the report shows the path beside it)."""
    return exc.cause if isinstance(exc, VideoDecodeError) else str(exc)


class Extractor:
    """Tiers plus decode options: turns a batch of jobs into outcomes.

    `staged`: tiers that a device stage runs instead (`tiermem.extraction.device_stage`); a
    video that needs one of them keeps its decoded clip in its outcome, for the stage.
    """

    def __init__(
        self,
        tiers: dict[str, Tier],
        decode_options: Mapping[str, Any],
        decode_threads: int,
        staged: Collection[str] = (),
        decoders: int = 1,
    ) -> None:
        self.tiers = tiers
        self.decode_options = dict(decode_options)
        self.decode_threads = decode_threads
        self.staged = frozenset(staged)
        self.decoders = decoders

    def decode(self, path: str, frames: int | None = None) -> Clip:
        """The video at the run's decode settings, or with `frames` frames over its whole length."""
        options = dict(self.decode_options)
        if frames is not None:
            options.update(frames=frames, fps=None)
        return decode(path, threads=self.decode_threads, **options)

    def run(self, jobs: Sequence[Job], stage: DeviceStage | None = None) -> list[_Outcome]:
        """Outcomes of `jobs` (`start`, then the stage's results waited for)."""
        return _from_stage(*self.start(jobs, stage))

    def start(
        self, jobs: Sequence[Job], stage: DeviceStage | None = None
    ) -> tuple[list[_Outcome], list[Future[StageResult] | None]]:
        """Outcomes of `jobs`, video by video, and the futures of what `stage` still runs on them.

        While the tiers work on one video the next ones are decoded in `decoders` threads
        (FFmpeg, numpy, OpenCV and torch release the GIL while they work), so decoding overlaps
        the tiers' work and at most `decoders` + 1 videos' frames are held at once. A video's
        features do not depend on it: each clip goes through its tiers alone
        (`Tier.transform_batch` of one clip). A clip that a `stage` given here runs tiers on
        is handed to it at once; without one, it is kept in the outcome (`staged`).
        """
        outcomes = [_Outcome(job) for job in jobs]
        futures: list[Future[StageResult] | None] = [None] * len(jobs)
        with ThreadPoolExecutor(self.decoders, thread_name_prefix="tiermem-decode") as ahead:
            coming: dict[int, Future[Clip]] = {}

            def decode_ahead(i: int) -> None:
                if i < len(jobs):
                    coming[i] = ahead.submit(self.decode, jobs[i].path)

            for i in range(self.decoders):
                decode_ahead(i)
            for i in range(len(jobs)):
                decode_ahead(i + self.decoders)
                try:
                    clip = coming.pop(i).result()
                except TiermemError as exc:
                    outcomes[i].errors.append(_reason(exc))
                    continue
                self._through_tiers(clip, outcomes[i])
                if not outcomes[i].errors and self.staged.intersection(jobs[i].tiers):
                    outcomes[i].clip = clip
                    if stage is not None:
                        futures[i] = _to_stage(outcomes[i], stage)
        return outcomes, futures

    def _through_tiers(self, clip: Clip, outcome: _Outcome) -> None:
        """Every tier the video still needs, on its clip; a tier that fails on it is noted."""
        for name, tier in self.tiers.items():
            if name not in outcome.job.tiers:
                continue
            try:
                if name in outcome.job.defer:  # fitted later, on this video among others
                    outcome.deferred[name] = tier.defer(clip, outcome.job.defer[name])
                    continue
                result = tier.transform_batch([clip])
            except MissingWeightsError:
                raise  # the run's network cannot load: no video can succeed, so the run stops once
            except TiermemError as exc:
                outcome.errors.append(f"tier {name}: {_reason(exc)}")
                continue
            outcome.values[name] = np.asarray(result.values[0], dtype=np.float32)
            outcome.facts[name] = _facts(result.facts, 0)


def _facts(facts: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    return dict(facts[k]) if k < len(facts) else {}


# Worker-process side. One pool serves the whole run: it decodes the fitting sample before the
# tiers are fitted, then extracts. Workers therefore build their tiers lazily, on the first
# extraction task, reading the fitted state from the store (saved there before extraction
# starts): a few bytes per task instead of the state, and a single pool start-up per run.


@dataclass(frozen=True)
class TierSpec:
    """What a worker needs to rebuild the parent's tiers: names, configs, where the state is."""

    store: str
    tiers: tuple[tuple[str, str], ...]  # (name, config as JSON)
    config_hashes: tuple[str, ...]  # the parent's tier.config_hash(), to check the rebuild
    fitted: tuple[str, ...] = ()  # the tiers whose fitted state the worker loads (others: fitted later)
    device: str = "cpu"  # where the networks run
    staged: tuple[str, ...] = ()  # tiers a device stage runs: the worker sends their clips back
    #: >0: the worker hosts a device stage of its own (a Ray worker on its GPU) for its network
    #: tiers, with batches of at most this many clips, and decodes in one thread per core.
    device_batch: int = 0
    states: Any = field(
        default=None, compare=False
    )  # fitted states as shared data (Ray), else read from `store`

    @classmethod
    def of(
        cls,
        tiers: Mapping[str, Tier],
        store: str,
        device: str,
        states: Any = None,
        staged: Collection[str] = (),
        device_batch: int = 0,
    ) -> "TierSpec":
        """The spec of built (and fitted) `tiers` whose state is saved in `store` (or given as
        `states`); the tiers named in `staged` are left to the caller's device stage."""
        own = {n: t for n, t in tiers.items() if n not in staged}
        return cls(
            store=store,
            tiers=tuple((n, json.dumps(t.config, sort_keys=True, default=str)) for n, t in own.items()),
            config_hashes=tuple(t.config_hash() for t in own.values()),
            fitted=tuple(n for n, t in own.items() if t.requires_fit and t.is_fitted),
            device=device,
            states=states,
            staged=tuple(staged),
            device_batch=device_batch,
        )


def worker_tiers(spec: TierSpec) -> dict[str, Tier]:
    """This worker's tiers as `spec` describes them, built on its first task and kept."""
    return _worker_extractor(spec).tiers


def _worker_extractor(spec: TierSpec) -> Extractor:
    state = worker_state()
    if state.get("spec") != spec:
        store = FeatureStore(spec.store)
        # Ray puts the states in its object store; local workers get them in the task itself.
        shared = state.get("fetch", _as_sent)(spec.states) if spec.states is not None else None
        tiers: dict[str, Tier] = {}
        for (name, config), expected in zip(spec.tiers, spec.config_hashes):
            tier = get_tier(name, **json.loads(config))
            if tier.uses_device:  # beside a device stage, only the networks use the device
                beside_stage = bool(spec.staged or spec.device_batch) and not tier.runs_network
                tier.on("cpu" if beside_stage else spec.device)
            if name in spec.fitted:
                fitted = (
                    shared[name] if shared is not None else getattr(store.load_state(name), "state", None)
                )
                if fitted is None:
                    raise RuntimeError(f"worker found no fitted state of tier {name} in {spec.store}")
                tier.load_state_dict(fitted)
            if tier.config_hash() != expected:
                raise RuntimeError(f"worker rebuilt tier {name} with another state than the parent's")
            tiers[name] = tier
        _host_stage(state, tiers, spec)
    return state["extractor"]


def _host_stage(state: dict[str, Any], tiers: dict[str, Tier], spec: TierSpec) -> None:
    """This worker's extractor, and with `spec.device_batch` its own device stage for its
    network tiers (kept for the worker's life; a stage of an earlier spec is ended)."""
    if (old := state.pop("stage", None)) is not None:
        old.__exit__(None, None, None)
    networks = {n: t for n, t in tiers.items() if t.runs_network} if spec.device_batch else {}
    own = {n: t for n, t in tiers.items() if n not in networks}
    staged = (*spec.staged, *networks)
    decoders = state["threads"] if networks else 1
    state.update(
        spec=spec, extractor=Extractor(own, state["decode_options"], state["threads"], staged, decoders)
    )
    if networks:
        state["stage"] = DeviceStage(networks, spec.device_batch).__enter__()


def _as_sent(states: Any) -> Any:
    return states


def _worker_run(spec: TierSpec, jobs: list[Job]) -> list[_Outcome]:
    extractor = _worker_extractor(spec)
    return extractor.run(jobs, worker_state().get("stage"))


def _worker_decode_for_fit(path: str, frames: int | None) -> Clip | str:
    state = worker_state()
    options = dict(state["decode_options"])
    if frames is not None:
        options.update(frames=frames, fps=None)
    try:
        return decode(path, threads=state["threads"], **options)
    except TiermemError as exc:
        return _reason(exc)


# -- calling-process side: hand work out, take outcomes back -----------------------------------


def fit_clips(
    paths: list[str],
    frames: int | None,
    local: Extractor,
    pool: "WorkerPool | RayPool | None",
    tick: Callable[[], object],
    failed: list[tuple[str, str]],
) -> Iterator[Clip]:
    """Decoded fitting clips in input order, streamed (a tier's fit may consume them one by one).

    `frames` frames over each video's length, or the run's own decode settings when None (the
    clips can then be extracted without a second decode). Files that cannot be decoded are
    skipped and added to `failed` with their reason.
    """
    if pool is None:
        for p in paths:
            try:
                clip: Clip | str = local.decode(p, frames=frames)
            except TiermemError as exc:
                clip = _reason(exc)
            tick()
            if isinstance(clip, str):
                failed.append((p, clip))
            else:
                yield clip
        return
    # In input order (a fit must not depend on which worker finished first), and only a few
    # clips ahead of the fit so memory stays bounded.
    ready: dict[int, Clip | str] = {}
    following = 0
    for i, result in pool.imap(_worker_decode_for_fit, [(p, frames) for p in paths], ahead=4 * pool.size):
        ready[i] = result.reason if isinstance(result, WorkerDied) else result
        while following in ready:
            clip = ready.pop(following)
            tick()
            if isinstance(clip, str):
                failed.append((paths[following], clip))
            else:
                yield clip
            following += 1


def run_batches(
    batches: list[list[Job]],
    local: Extractor,
    pool: "WorkerPool | RayPool | None",
    spec: TierSpec,
    stage: DeviceStage | None = None,
) -> Iterator[list[_Outcome]]:
    """Outcomes batch by batch, in completion order; at most 2 batches per worker in flight.

    A batch whose worker process died comes back with that reason for each of its videos.
    With a `stage`, clips go to it once the other tiers are done with them: here as each is
    decoded, or from the workers, which send them back with their outcomes (`submit` blocks
    while the stage is full, and so holds the decoding back); a batch comes out once the
    stage has run its clips, and the next batches are decoded meanwhile.
    """
    if stage is None:
        yield from _decoded(batches, local, pool, spec)
        return
    waiting: collections.deque[tuple[list[_Outcome], list[Future[StageResult] | None]]] = collections.deque()
    for handed in _handed_to(stage, batches, local, pool, spec):
        waiting.append(handed)
        while waiting and all(f is None or f.done() for f in waiting[0][1]):
            yield _from_stage(*waiting.popleft())
    while waiting:
        yield _from_stage(*waiting.popleft())


def _decoded(
    batches: list[list[Job]], local: Extractor, pool: "WorkerPool | RayPool | None", spec: TierSpec
) -> Iterator[list[_Outcome]]:
    if pool is None:
        for batch in batches:
            yield local.run(batch)
        return
    for i, result in pool.imap(_worker_run, [(spec, batch) for batch in batches], ahead=2 * pool.size):
        if isinstance(result, WorkerDied):
            yield [_Outcome(job, errors=[result.reason]) for job in batches[i]]
        else:
            yield result


def _handed_to(
    stage: DeviceStage,
    batches: list[list[Job]],
    local: Extractor,
    pool: "WorkerPool | RayPool | None",
    spec: TierSpec,
) -> Iterator[tuple[list[_Outcome], list[Future[StageResult] | None]]]:
    """Each batch's outcomes with the stage's futures of their clips (None: nothing staged)."""
    if pool is None:
        for batch in batches:
            yield local.start(batch, stage)
        return
    for outcomes in _decoded(batches, local, pool, spec):
        yield outcomes, [_to_stage(o, stage) for o in outcomes]


def _to_stage(outcome: _Outcome, stage: DeviceStage) -> Future[StageResult] | None:
    """Hand the outcome's clip to the stage for the staged tiers its video needs (None: none)."""
    clip, outcome.clip = outcome.clip, None
    if clip is None:
        return None
    return stage.submit(clip, [n for n in outcome.job.tiers if n in stage.tiers])


def _from_stage(outcomes: list[_Outcome], futures: list[Future[StageResult] | None]) -> list[_Outcome]:
    """`outcomes` completed with the stage's results (waits for them); weights that cannot load,
    or a bug in the stage, stop the run here."""
    for outcome, future in zip(outcomes, futures):
        if future is not None:
            result = future.result()
            outcome.values.update(result.values)
            outcome.facts.update(result.facts)
            outcome.errors.extend(result.errors)
            outcome.device_batch = result.batch
    return outcomes


def record(
    outcome: _Outcome,
    tiers: dict[str, Tier],
    keys: dict[str, str],
    writers: dict[str, Any],
    report: ExtractReport | None,
) -> None:
    """Check one video's values (one per feature name, all finite) and write their rows; then
    note the video's result in `report`, or not yet when None (rows of tiers still deferred
    follow: the values written are taken out of the outcome, its errors stay)."""
    job = outcome.job
    for name, values in outcome.values.items():
        names = tiers[name].feature_names
        if values.shape != (len(names),):
            outcome.errors.append(f"tier {name}: {values.size} values for {len(names)} feature names")
            continue
        bad = [names[j] for j in np.flatnonzero(~np.isfinite(values))]
        if bad:
            outcome.errors.append(f"tier {name}: non-finite values in {', '.join(bad[:5])}")
            continue
        writers[name].add(
            FeatureRow(
                job.video_id, job.path, job.content_hash, keys[name], values, outcome.facts.get(name, {})
            )
        )
    outcome.values.clear()
    if report is None:
        return
    if outcome.device_batch:
        report.device_batches.append(outcome.device_batch)
    if outcome.errors:
        report.failed.append((job.path, "; ".join(outcome.errors)))
    else:
        report.done.append(job.video_id)

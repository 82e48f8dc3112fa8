"""One extraction run: cache check, fitting, batches handed to workers, rows written (steps in the package docstring)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.extraction.device_stage import DeviceStage
from tiermem.extraction.fitting import (
    fit_frames_per_clip,
    fit_on_pass,
    fit_sample,
    fit_tier,
    fits_on_pass,
    no_fitting_video,
    save_fitted,
)
from tiermem.extraction.frame_budget import FRAME_MEMORY, stage_limits, videos_per_task
from tiermem.extraction.pool import WorkerPool
from tiermem.extraction.ray_pool import RayPool, import_ray
from tiermem.extraction.report import ExtractReport
from tiermem.extraction.workers import Extractor, Job, TierSpec, record, run_batches
from tiermem.inputs import PathInputs, find_videos, shared_ids, unreadable_reason
from tiermem.run import Run
from tiermem.runtime import default_threads, threads_for
from tiermem.store import FeatureStore, SavedState, content_hash, load_state_file
from tiermem.store_memory import MemoryStore
from tiermem.tiers import Tier, get_tier

#: The stage that reads every input file once for its content hash (the cache key).
HASHING = "hashing files"


def extraction_key(tier: Tier, decode_options: Mapping[str, Any]) -> str:
    """The store's config hash: the tier's config and fitted state plus how frames were decoded.

    Decode options are part of it because the same tier on 9 frames at 128 px gives other
    numbers than on 45 frames at 256 px.
    """
    h = hashlib.sha256(tier.config_hash().encode())
    h.update(json.dumps(dict(decode_options), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def extract(
    paths_or_dirs: PathInputs,
    tiers: Sequence[str] = ("low",),
    out: str | os.PathLike[str] = "features",
    **options: Any,
) -> ExtractReport:
    """Extract `tiers` for every video under `paths_or_dirs` into the feature store at `out`.

    `paths_or_dirs`: one path or many, files or directories (searched recursively, once); the
    files found are extracted by `extract_videos`, whose keyword `options` (frames, size, mode,
    state, run, ...) this takes as they are.
    """
    start = time.monotonic()
    _requested_tiers(tiers)
    report = extract_videos(find_videos(paths_or_dirs), tiers=tiers, out=out, **options)
    report.seconds = time.monotonic() - start
    return report


def extract_videos(
    paths: Sequence[Path],
    tiers: Sequence[str] = ("low",),
    out: str | os.PathLike[str] | MemoryStore = "features",
    frames: int = 45,
    size: int = 256,
    mode: str = "stretch",
    fps: float | None = None,
    tier_config: Mapping[str, Mapping[str, Any]] | None = None,
    state: str | os.PathLike[str] | None = None,
    fit_max_videos: int = 200,
    fit_frames: int = 9,
    flush_every: int = 64,
    flush_seconds: float = 10.0,
    frame_memory: int = FRAME_MEMORY,
    run: Run | None = None,
) -> ExtractReport:
    """Extract `tiers` for the video files `paths` (as found by `find_videos`: no directory is searched here).

    `run` (`tiermem.run.Run`): how many workers (`run.workers` processes on this machine, or
    Ray actors, each asking for the engine's CPUs and GPUs, on its cluster; paths must then be
    readable by every node), videos per worker task (`run.batch`), where the networks run
    (`run.device`), and who hears of the progress. Default: one local process.

    `out`: the feature store's directory, or a `MemoryStore` (rows kept in memory, nothing
    cached or written). `state`: a directory holding ``<tier>.state.npz`` files (the `out` of a run on the training
    split) or one such file; fitted tiers then use it instead of fitting here.
    `frame_memory`: bytes of decoded frames the run may hold at once over all workers; videos
    per task are lowered to fit, and settings where one video per worker does not fit are
    refused before any work. Returns an `ExtractReport`; files that fail are in
    `report.failed`, the run does not stop for them.
    """
    start = time.monotonic()
    tiers = _requested_tiers(tiers)
    run = Run.of(run)
    engine, workers = run.cluster, run.workers
    if engine.name == "ray":
        import_ray()  # one line naming the extra, before any work
    if not paths:
        raise TiermemError("no video files given")
    built = {name: get_tier(name, **dict((tier_config or {}).get(name, {}))) for name in tiers}
    device = run.device_for(built.values())
    networks = _staged(built, run, device)
    for name, tier in built.items():
        if tier.uses_device:  # with a device stage, the tiers beside it stay on the CPU
            tier.on(device if name in networks or not networks else "cpu")
    # The stage runs here, fed by local workers; a Ray worker hosts one of its own on its node.
    staged = {} if engine.name == "ray" else networks
    device_batch = run.device_batch if networks and engine.name == "ray" else 0
    for name, tier in built.items():
        if size < tier.min_frame_size:
            raise TiermemError(
                f"frame size {size}: tier {name} needs frames of at least {tier.min_frame_size} pixels a side"
            )
    given = _given_states(state, [n for n, t in built.items() if t.requires_fit])
    # A Ray worker's stage batches the videos of one task: a task of one device batch.
    batch = max(run.batch, device_batch)
    per_task = videos_per_task(
        len(paths), workers, batch, None if fps else frames, size, frame_memory, 2 if staged else 1
    )
    decode_options = {"frames": frames, "size": size, "mode": mode, "fps": fps}
    store = out if isinstance(out, MemoryStore) else FeatureStore(out)
    report = ExtractReport(out=store.root, tiers=tiers)
    cores = default_threads()
    # Every process that runs tiers, this one included when it runs a batch itself, uses the
    # same thread count: a network's output changes in the last bits with its thread count, and
    # a video's row must not depend on which process computed it (a resume with the same
    # --workers is bit-identical).
    threads = max(1, cores // workers)

    with ExitStack() as stack:
        stack.enter_context(store.lock())
        stack.enter_context(threads_for(threads))  # this process: decoding, and tiers when it runs batches
        local = Extractor(
            {n: t for n, t in built.items() if n not in staged},
            decode_options,
            decode_threads=0,
            staged=staged,
        )
        owner = None
        if staged:
            max_clips, capacity = stage_limits(run.device_batch, None if fps else frames, size, frame_memory)
            owner = stack.enter_context(DeviceStage(staged, max_clips, capacity=capacity))
        pool: WorkerPool | RayPool | None = None
        settings = tuple(sorted(decode_options.items()))
        if engine.name == "ray":
            pool = stack.enter_context(
                run.workers_for(
                    ("ray", workers, engine, settings),
                    lambda: RayPool(
                        workers,
                        decode_options,
                        max(1, int(engine.cpus_per_worker)),
                        engine.address,
                        cpus=engine.cpus_per_worker,
                        gpus=engine.gpus_per_worker,
                    ),
                )
            )
        elif workers > 1:
            pool = stack.enter_context(
                run.workers_for(
                    ("local", workers, threads, settings),
                    lambda: WorkerPool(workers, decode_options, threads),
                )
            )

        # 1. content hashes (and files that cannot even be read), then ids used by one file each
        hashes = _hash_inputs(paths, report, run)
        ids = {i: paths[i].stem for i in hashes}
        for vid, clash in shared_ids([paths[i] for i in hashes]).items():
            for p in clash:
                others = ", ".join(str(q) for q in clash if q is not p)
                report.failed.append(
                    (str(p), f"video id {vid!r} is used by more than one file (also {others})")
                )
            hashes = {i: h for i, h in hashes.items() if ids[i] != vid}
        readable = sorted(hashes)
        for name in built:  # a table that cannot be read (truncated, foreign) is kept aside and rebuilt
            if (why := store.unreadable_table(name)) is not None:
                table = store.table_path(name)
                moved = store.set_aside(table)
                run.note(
                    f"{table}: not a readable feature table ({why}); moved to {moved}, recomputing",
                    warning=True,
                )

        # 2. fitted state: given, saved here, or fitted now on a sample of the inputs (on the
        #    extraction's own pass where it can be). A state applies only to frames decoded the
        #    same way (e.g. HOG dimensions follow the size).
        fit_settings = {"size": size, "mode": mode}
        inputs = [str(paths[i]) for i in readable]
        sample = fit_sample(inputs, fit_max_videos)
        per_clip = fit_frames_per_clip(len(sample), fit_frames)
        fit_config = {"decode": fit_settings, "videos": len(sample), "frames": per_clip}
        on_pass: dict[str, Tier] = {}
        for name, tier in built.items():
            if not tier.requires_fit:
                continue
            saved = _saved_state(store, name, run)
            if name in given:
                fitted_under = given[name].config.get("decode")
                if fitted_under != fit_settings:
                    raise DataMismatchError(
                        f"{state}: the {name} state was fitted on frames {fitted_under}, this run decodes {fit_settings}"
                    )
                given[name].apply(tier)
                store.save_state(name, tier.state_dict(), config=given[name].config)
            elif saved is not None and saved.config.get("decode") == fit_settings:
                saved.apply(tier)
            elif not sample:
                continue
            # Half the frame memory may hold the sample's deferred work until the fit.
            elif fits_on_pass(tier, len(sample), per_clip, None if fps else frames, size, frame_memory // 2):
                on_pass[name] = tier
            elif fit_tier(
                name, tier, sample, per_clip, fit_frames, local, pool, report, run, len(sample) == len(inputs)
            ):
                save_fitted(name, tier, store, report, {"tier": tier.config, **fit_config})
            else:
                readable = []  # no input decodes: each is in report.failed with its reason

        writers = {
            n: stack.enter_context(store.writer(n, t.feature_names, flush_every, flush_seconds))
            for n, t in built.items()
        }
        stage = f"extracting {', '.join(tiers)}"
        extracted: set[str] = set()
        if on_pass:
            # 3. the sampled videos, extracted first: the tiers fitted on this pass learn from them
            keys = {name: extraction_key(t, decode_options) for name, t in built.items()}
            position = {str(paths[i]): i for i in readable}
            defer = {name: per_clip if per_clip > fit_frames else None for name in on_pass}
            jobs: list[Job] = []
            for p in sample:
                i = position[p]
                need = [n for n in tiers if n in on_pass or not store.cached(n, ids[i], hashes[i], keys[n])]
                jobs.append(Job(p, ids[i], hashes[i], need, defer))
            fitting = f"{stage} ({len(sample)} videos, fitting {', '.join(on_pass)} on them)"
            run.progress(fitting, 0, len(jobs))
            seen = itertools.count(1)

            def arrived(outcome: Any) -> None:  # the rows of tiers not fitted here are written at once
                record(outcome, built, keys, writers, None)
                run.progress(fitting, next(seen), len(jobs))

            spec = TierSpec.of(
                built, _where(store), device, _shared_states(pool, store, built), staged, device_batch
            )
            sample_batches = _batches(jobs, per_task, workers)
            outcomes, fitted = fit_on_pass(
                on_pass,
                jobs,
                run_batches(sample_batches, local, _pool_for(pool, sample_batches), spec, owner),
                arrived,
            )
            for name in fitted:
                save_fitted(name, built[name], store, report, {"tier": built[name].config, **fit_config})
            if not fitted and len(sample) < len(inputs):
                raise no_fitting_video(
                    next(iter(on_pass)), [(o.job.path, "; ".join(o.errors)) for o in outcomes]
                )
            keys = {name: extraction_key(t, decode_options) for name, t in built.items()}
            for o in outcomes:
                record(o, built, keys, writers, report)
            extracted = set(sample)
        keys = {name: extraction_key(t, decode_options) for name, t in built.items()}

        # 4. what is left to do
        jobs = []
        for i in readable:
            if str(paths[i]) in extracted:
                continue
            need = [n for n in tiers if not store.cached(n, ids[i], hashes[i], keys[n])]
            if need:
                jobs.append(Job(str(paths[i]), ids[i], hashes[i], need))
            else:
                report.skipped.append(ids[i])

        # 5. extraction; rows are written here, by this process only
        run.progress(stage, 0, len(jobs))
        batches = _batches(jobs, per_task, workers)
        spec = TierSpec.of(
            built,
            _where(store),
            device,
            _shared_states(pool, store, built) if batches else None,
            staged,
            device_batch,
        )
        finished = 0
        for outcomes in run_batches(batches, local, _pool_for(pool, batches), spec, owner):
            for o in outcomes:
                record(o, built, keys, writers, report)
            finished += len(outcomes)
            run.progress(
                stage, finished, len(jobs), detail=f"{len(report.failed)} failed" if report.failed else ""
            )
    # leaving the stack flushed every writer, shut the pool down and released the lock
    report.done.sort()
    report.skipped.sort()
    report.failed.sort()
    report.seconds = time.monotonic() - start
    return report


def _staged(tiers: Mapping[str, Tier], run: Run, device: str) -> dict[str, Tier]:
    """The network tiers a device stage runs (none without a stage)."""
    if not run.stages_networks(device):
        return {}
    return {name: tier for name, tier in tiers.items() if tier.runs_network}


def _batches(jobs: list[Job], per_task: int, workers: int) -> list[list[Job]]:
    """`jobs` in tasks of `per_task` videos; smaller tasks for a small run, so every worker gets some."""
    if workers > 1:
        per_task = min(per_task, max(1, -(-len(jobs) // (2 * workers))))
    return [jobs[k : k + per_task] for k in range(0, len(jobs), per_task)]


def _pool_for(pool: WorkerPool | RayPool | None, batches: list[list[Job]]) -> WorkerPool | RayPool | None:
    """The pool, or None where one local task does the work faster than a worker starts."""
    return pool if len(batches) > 1 or isinstance(pool, RayPool) else None


def _where(store: FeatureStore | MemoryStore) -> str:
    """Where workers read the fitted states: the store's directory ("" for one in memory)."""
    return str(store.root.resolve()) if store.root is not None else ""


def _shared_states(
    pool: WorkerPool | RayPool | None, store: FeatureStore | MemoryStore, tiers: Mapping[str, Tier]
) -> Any:
    """The fitted states as data where workers cannot read them from a directory: on a cluster
    (put once), or from a store held in memory (sent with each task); else None."""
    states = {n: t.state_dict() for n, t in tiers.items() if t.requires_fit and t.is_fitted}
    if isinstance(pool, RayPool):
        return pool.share(states)
    return states if store.root is None else None


def _hash_inputs(paths: Sequence[Path], report: ExtractReport, run: Run) -> dict[int, str]:
    """Content hash of each readable input by position; the others go to `report.failed` with the reason."""
    hashes: dict[int, str] = {}
    for i, p in enumerate(paths):
        reason = unreadable_reason(p)
        if reason is None:
            try:
                hashes[i] = content_hash(p)
            except OSError as exc:
                reason = f"cannot read file ({exc.strerror or exc})"
        if reason is not None:
            report.failed.append((str(p), reason))
        run.progress(HASHING, i + 1, len(paths))
    return hashes


def _saved_state(store: FeatureStore | MemoryStore, name: str, run: Run) -> SavedState | None:
    """The state the store holds for tier `name`; a damaged file is set aside (and the tier refitted)."""
    try:
        return store.load_state(name)
    except DataMismatchError as exc:
        moved = store.set_aside(store.state_path(name))
        run.note(f"{exc}; moved to {moved}, refitting", warning=True)
        return None


def _requested_tiers(tiers: Sequence[str]) -> list[str]:
    """The tiers asked for, each once, in order; refuses an empty list."""
    names = list(dict.fromkeys(tiers))
    if not names:
        raise TiermemError("no tiers requested")
    return names


def _given_states(state: str | os.PathLike[str] | None, fitted_tiers: list[str]) -> dict[str, SavedState]:
    """States passed by the caller: a store directory (one npz per tier) or one npz file."""
    if state is None or not fitted_tiers:
        return {}
    path = Path(state)
    if path.is_dir():
        source = FeatureStore(path)
        states = {n: s for n in fitted_tiers if (s := source.load_state(n)) is not None}
        missing = [n for n in fitted_tiers if n not in states]
        if missing:
            raise TiermemError(
                f"{path}: no fitted state for tier(s) {', '.join(missing)} (expected <tier>.state.npz)"
            )
        return states
    if not path.exists():
        raise TiermemError(f"{path}: state file not found")
    saved = load_state_file(path)
    if saved.tier not in fitted_tiers:
        raise TiermemError(
            f"{path}: holds the state of tier {saved.tier!r}, not of a requested tier that is fitted ({', '.join(fitted_tiers)})"
        )
    return {saved.tier: saved}

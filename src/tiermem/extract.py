"""Feature extraction over many videos: decode each once, feed every requested tier, cache the rows.

    >>> from tiermem.extract import extract
    >>> report = extract(["videos/"], tiers=["low"], out="features", workers=2)
    >>> report.done, report.skipped, report.failed

What happens, in order:

1. *Inputs*: directories are searched recursively for video files (``VIDEO_EXTENSIONS``), files
   given by name are taken as they are; the video id is the file stem and must be unique.
2. *Cache check*: each file's bytes are hashed; a video whose row in ``<out>/<tier>.parquet``
   has the same content hash and the same extraction key (tier config + fitted state + decode
   options) is skipped for that tier.
3. *Fitting*: a tier that learns something (the low tier's HOG PCA) uses, in this order, the
   state passed as ``state`` (e.g. fitted on a training split), the state saved in ``out`` if
   it was fitted on frames of the same size and resize mode, or else fits on an evenly spaced
   sample of at most ``fit_max_videos`` of the input videos decoded at ``fit_frames`` frames
   and saves it to ``out`` before extracting anything, so a resumed run uses the same fit
   (same key, so cache hits).
4. *Extraction*: batches of ``batch_size`` videos go to ``workers`` processes (or run in this
   process when ``workers=1``); each video is decoded once and the one `Clip` is given to every
   tier that still needs it, through ``tier.transform_batch`` so network tiers batch inference.
   Rows come back to this process, which alone writes the store and flushes it every
   ``flush_every`` videos or ``flush_seconds`` seconds, so a killed run resumes where it stopped.

A file that fails (not a video, corrupt, a tier's `TiermemError`) is recorded with its reason
and the run goes on; anything else is a bug and stops the run (after flushing what is done).
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console

from tiermem.errors import DataMismatchError, TiermemError, VideoDecodeError
from tiermem.runtime import default_threads, set_threads
from tiermem.store import FeatureRow, FeatureStore, SavedState, content_hash, load_state_file
from tiermem.tiers import Tier, get_tier
from tiermem.video import Clip, decode

if TYPE_CHECKING:
    from rich.table import Table

#: File extensions picked up when a directory is given (a file named explicitly is always tried).
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv")


@dataclass
class ExtractReport:
    """What a run did: ids extracted now, ids already cached, files that failed and why."""

    out: Path
    tiers: list[str]
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    fitted: list[str] = field(default_factory=list)  # tiers whose state was fitted in this run
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "tiers": self.tiers,
            "done": self.done,
            "skipped": self.skipped,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "fitted": self.fitted,
            "seconds": round(self.seconds, 3),
        }

    def summary_table(self) -> Table:
        """done / skipped / failed counts as a rich table."""
        from rich.table import Table

        table = Table(title=f"extract {', '.join(self.tiers)} → {self.out}")
        table.add_column("done", justify="right", style="green")
        table.add_column("skipped (cached)", justify="right")
        table.add_column("failed", justify="right", style="red" if self.failed else None)
        table.add_column("time", justify="right")
        table.add_row(str(len(self.done)), str(len(self.skipped)), str(len(self.failed)), f"{self.seconds:.1f} s")
        return table

    def print_failures(self, console: Console) -> None:
        """One line per failed file, `path: reason`, never folded (easy to grep and copy)."""
        from rich.markup import escape

        if self.failed:
            console.print(f"[bold red]{len(self.failed)} failed:[/]")
        for path, reason in self.failed:
            console.print(f"  [red]✗[/] {escape(path)}: {escape(reason)}", highlight=False, soft_wrap=True)


# -- inputs ------------------------------------------------------------------------------------


def find_videos(paths_or_dirs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand directories (recursively, sorted) into video files; keep named files as given.

    A path that does not exist is kept, so that it is reported as a failure with its reason
    rather than silently dropped.
    """
    found: list[Path] = []
    for p in map(Path, paths_or_dirs):
        if p.is_dir():
            found.extend(
                sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
            )
        else:
            found.append(p)
    unique: dict[Path, Path] = {}
    for f in found:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def video_ids(paths: Sequence[Path]) -> list[str]:
    """The file stem of each path; two files with the same stem are refused (ids key every table)."""
    by_id: dict[str, list[Path]] = {}
    for p in paths:
        by_id.setdefault(p.stem, []).append(p)
    clashes = {vid: ps for vid, ps in by_id.items() if len(ps) > 1}
    if clashes:
        shown = "; ".join(f"{vid!r}: {', '.join(map(str, ps))}" for vid, ps in sorted(clashes.items())[:5])
        more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
        raise DataMismatchError(
            f"{len(clashes)} video id(s) used by more than one file (the id is the file stem): {shown}{more}"
        )
    return [p.stem for p in paths]


# -- cache key ---------------------------------------------------------------------------------


def extraction_key(tier: Tier, decode_options: Mapping[str, Any]) -> str:
    """The store's config hash: the tier's config and fitted state plus how frames were decoded.

    Decode options are part of it because the same tier on 9 frames at 128 px gives other
    numbers than on 45 frames at 256 px.
    """
    h = hashlib.sha256(tier.config_hash().encode())
    h.update(json.dumps(dict(decode_options), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


# -- the work done per batch (in a worker process or in this one) ------------------------------


@dataclass
class _Job:
    path: str
    video_id: str
    content_hash: str
    tiers: list[str]  # the tiers this video still needs


@dataclass
class _Outcome:
    job: _Job
    values: dict[str, np.ndarray] = field(default_factory=dict)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _reason(exc: TiermemError) -> str:
    """The cause without the path (the report shows the path beside it)."""
    return exc.cause if isinstance(exc, VideoDecodeError) else str(exc)


class _Extractor:
    """Tiers plus decode options: turns a batch of jobs into outcomes."""

    def __init__(self, tiers: dict[str, Tier], decode_options: Mapping[str, Any], decode_threads: int) -> None:
        self.tiers = tiers
        self.decode_options = dict(decode_options)
        self.decode_threads = decode_threads

    def decode(self, path: str, frames: int | None = None) -> Clip:
        options = dict(self.decode_options)
        if frames is not None:
            options.update(frames=frames, fps=None)
        return decode(path, threads=self.decode_threads, **options)

    def run(self, jobs: Sequence[_Job]) -> list[_Outcome]:
        outcomes = [_Outcome(job) for job in jobs]
        clips: dict[int, Clip] = {}
        for i, job in enumerate(jobs):
            try:
                clips[i] = self.decode(job.path)
            except TiermemError as exc:
                outcomes[i].errors.append(_reason(exc))
        for name, tier in self.tiers.items():
            idx = [i for i in clips if name in jobs[i].tiers]
            if not idx:
                continue
            try:
                result = tier.transform_batch([clips[i] for i in idx])
                per_clip = [(result.values[k], _facts(result.facts, k)) for k in range(len(idx))]
            except TiermemError:
                # Find which clip(s) the batch failed on; the others still get their rows.
                per_clip = []
                for i in idx:
                    try:
                        one = tier.transform_batch([clips[i]])
                        per_clip.append((one.values[0], _facts(one.facts, 0)))
                    except TiermemError as exc:
                        per_clip.append((None, {}))
                        outcomes[i].errors.append(f"tier {name}: {_reason(exc)}")
            for i, (values, facts) in zip(idx, per_clip):
                if values is not None:
                    outcomes[i].values[name] = np.asarray(values, dtype=np.float32)
                    outcomes[i].facts[name] = facts
        return outcomes


def _facts(facts: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    return dict(facts[k]) if k < len(facts) else {}


# Worker-process side. One pool serves the whole run: it decodes the fitting sample before the
# tiers are fitted, then extracts. Workers therefore build their tiers lazily, on the first
# extraction task, reading the fitted state from the store (saved there before extraction
# starts): a few bytes per task instead of the state, and a single pool start-up per run.


@dataclass(frozen=True)
class _TierSpec:
    """What a worker needs to rebuild the parent's tiers: names, configs, where the state is."""

    store: str
    tiers: tuple[tuple[str, str], ...]  # (name, config as JSON)
    config_hashes: tuple[str, ...]  # the parent's tier.config_hash(), to check the rebuild


_WORKER: dict[str, Any] = {}


def _init_worker(decode_options: dict[str, Any], threads: int) -> None:
    set_threads(threads)
    _WORKER.update(decode_options=decode_options, threads=threads, extractor=None, spec=None)


def _worker_extractor(spec: _TierSpec) -> _Extractor:
    if _WORKER["spec"] != spec:
        store = FeatureStore(spec.store)
        tiers: dict[str, Tier] = {}
        for (name, config), expected in zip(spec.tiers, spec.config_hashes):
            tier = get_tier(name, **json.loads(config))
            if tier.requires_fit and (saved := store.load_state(name)) is not None:
                tier.load_state_dict(saved.state)
            if tier.config_hash() != expected:
                raise RuntimeError(f"worker rebuilt tier {name} with another state than the parent's")
            tiers[name] = tier
        _WORKER.update(spec=spec, extractor=_Extractor(tiers, _WORKER["decode_options"], _WORKER["threads"]))
    return _WORKER["extractor"]


def _worker_run(spec: _TierSpec, jobs: list[_Job]) -> list[_Outcome]:
    return _worker_extractor(spec).run(jobs)


def _worker_decode_for_fit(path: str, frames: int) -> Clip | None:
    options = dict(_WORKER["decode_options"], frames=frames, fps=None)
    try:
        return decode(path, threads=_WORKER["threads"], **options)
    except TiermemError:
        return None  # reported when the extraction itself reaches this file


# -- the run -----------------------------------------------------------------------------------


def extract(
    paths_or_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    tiers: Sequence[str] = ("low",),
    out: str | os.PathLike[str] = "features",
    frames: int = 45,
    size: int = 256,
    mode: str = "stretch",
    fps: float | None = None,
    workers: int = 1,
    batch_size: int = 8,
    tier_config: Mapping[str, Mapping[str, Any]] | None = None,
    state: str | os.PathLike[str] | None = None,
    fit_max_videos: int = 200,
    fit_frames: int = 9,
    flush_every: int = 64,
    flush_seconds: float = 10.0,
    progress: bool = True,
    console: Console | None = None,
) -> ExtractReport:
    """Extract `tiers` for every video under `paths_or_dirs` into the feature store at `out`.

    `state`: a directory holding ``<tier>.state.npz`` files (the `out` of a run on the training
    split) or one such file; fitted tiers then use it instead of fitting here. Returns an
    `ExtractReport`; files that fail are in `report.failed`, the run does not stop for them.
    """
    start = time.monotonic()
    if isinstance(paths_or_dirs, (str, os.PathLike)):
        paths_or_dirs = [paths_or_dirs]
    tiers = list(dict.fromkeys(tiers))
    if not tiers:
        raise TiermemError("no tiers requested")
    if workers < 1 or batch_size < 1:
        raise TiermemError(f"workers and batch size must be >= 1 (got {workers}, {batch_size})")
    paths = find_videos(paths_or_dirs)
    if not paths:
        raise TiermemError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in {', '.join(map(str, paths_or_dirs))}")
    ids = video_ids(paths)
    built = {name: get_tier(name, **dict((tier_config or {}).get(name, {}))) for name in tiers}
    decode_options = {"frames": frames, "size": size, "mode": mode, "fps": fps}
    store = FeatureStore(out)
    report = ExtractReport(out=Path(out), tiers=tiers)
    console = console or Console(stderr=True)
    cores = default_threads()
    threads = max(1, cores // workers)

    with ExitStack() as stack:
        stack.enter_context(store.lock())
        bar = stack.enter_context(_progress(console, enabled=progress))
        set_threads(cores)  # this process: decoding and tiers when it runs batches itself
        local = _Extractor(built, decode_options, decode_threads=0)

        pool: ProcessPoolExecutor | None = None

        def get_pool() -> ProcessPoolExecutor:
            nonlocal pool
            if pool is None:
                pool = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context(_START_METHOD),
                    initializer=_init_worker,
                    initargs=(decode_options, threads),
                )
                stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            return pool

        # 1. content hashes (and files that cannot even be read)
        hashes: dict[int, str] = {}
        task = bar.add_task("hashing files", total=len(paths))
        for i, p in enumerate(paths):
            try:
                hashes[i] = content_hash(p)
            except FileNotFoundError:
                report.failed.append((str(p), "file not found"))
            except IsADirectoryError:
                report.failed.append((str(p), "is a directory, not a video file"))
            except OSError as exc:
                report.failed.append((str(p), f"cannot read file ({exc.strerror or exc})"))
            bar.advance(task)
        readable = sorted(hashes)

        # 2. fitted state: given, saved here, or fitted now on a sample of the inputs. A state
        #    applies only to frames decoded the same way (e.g. HOG dimensions follow the size).
        fit_settings = {"size": size, "mode": mode}
        given = _given_states(state, [n for n, t in built.items() if t.requires_fit])
        for name, tier in built.items():
            if not tier.requires_fit:
                continue
            saved = store.load_state(name)
            if name in given:
                fitted_under = given[name].config.get("decode")
                if fitted_under != fit_settings:
                    raise DataMismatchError(
                        f"{state}: the {name} state was fitted on frames {fitted_under}, this run decodes {fit_settings}"
                    )
                tier.load_state_dict(given[name].state)
                store.save_state(name, tier.state_dict(), config=given[name].config)
            elif saved is not None and saved.config.get("decode") == fit_settings:
                tier.load_state_dict(saved.state)
            else:
                sample = _fit_sample([str(paths[i]) for i in readable], fit_max_videos)
                fit_task = bar.add_task(f"fitting {name} on {len(sample)} videos", total=len(sample))
                decoders = get_pool() if workers > 1 and len(sample) > 1 else None
                clips = _fit_clips(sample, fit_frames, local, decoders, workers, lambda: bar.advance(fit_task))
                first = next(clips, None)
                if first is None:
                    raise TiermemError(
                        f"cannot fit tier {name}: none of the {len(sample)} sampled videos could be decoded"
                    )
                try:
                    tier.fit(itertools.chain([first], clips))
                except TiermemError as exc:
                    raise TiermemError(
                        f"{exc} (while fitting tier {name} on {len(sample)} input videos; for a few videos, "
                        "pass a state fitted on a larger corpus with --state)"
                    ) from None
                config = {"tier": tier.config, "decode": fit_settings, "videos": len(sample), "frames": fit_frames}
                store.save_state(name, tier.state_dict(), config=config)
                report.fitted.append(name)
        keys = {name: extraction_key(t, decode_options) for name, t in built.items()}

        # 3. what is left to do
        jobs: list[_Job] = []
        for i in readable:
            need = [n for n in tiers if not store.cached(n, ids[i], hashes[i], keys[n])]
            if need:
                jobs.append(_Job(str(paths[i]), ids[i], hashes[i], need))
            else:
                report.skipped.append(ids[i])

        # 4. extraction; rows are written here, by this process only
        writers = {
            n: stack.enter_context(store.writer(n, t.feature_names, flush_every, flush_seconds))
            for n, t in built.items()
        }
        task = bar.add_task(f"extracting {', '.join(tiers)}", total=len(jobs))
        if workers > 1:  # small runs: smaller tasks, so every worker gets some
            batch_size = min(batch_size, max(1, -(-len(jobs) // (2 * workers))))
        batches = [jobs[k : k + batch_size] for k in range(0, len(jobs), batch_size)]
        spec = _TierSpec(
            store=str(store.root.resolve()),
            tiers=tuple((n, json.dumps(t.config, sort_keys=True, default=str)) for n, t in built.items()),
            config_hashes=tuple(t.config_hash() for t in built.values()),
        )
        parallel = get_pool() if workers > 1 and len(batches) > 1 else None
        for outcomes in _run_batches(batches, local, parallel, spec, workers):
            for o in outcomes:
                _record(o, built, keys, writers, report)
                bar.advance(task)
                if report.failed:
                    bar.update(task, description=f"extracting {', '.join(tiers)} ({len(report.failed)} failed)")
    # leaving the stack flushed every writer, shut the pool down and released the lock
    report.done.sort()
    report.skipped.sort()
    report.failed.sort()
    report.seconds = time.monotonic() - start
    return report


#: forkserver: workers start from a clean process (no copied locks or thread pools) but fast.
_START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _progress(console: Console, enabled: bool):  # noqa: ANN202 - rich's Progress
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


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
            raise TiermemError(f"{path}: no fitted state for tier(s) {', '.join(missing)} (expected <tier>.state.npz)")
        return states
    if not path.exists():
        raise TiermemError(f"{path}: state file not found")
    saved = load_state_file(path)
    if saved.tier not in fitted_tiers:
        raise TiermemError(
            f"{path}: holds the state of tier {saved.tier!r}, not of a requested tier that is fitted ({', '.join(fitted_tiers)})"
        )
    return {saved.tier: saved}


def _fit_sample(paths: list[str], limit: int) -> list[str]:
    """At most `limit` paths spread evenly over the (sorted) inputs: deterministic, so reruns agree."""
    if len(paths) <= limit:
        return paths
    idx = np.unique(np.linspace(0, len(paths) - 1, limit).round().astype(int))
    return [paths[i] for i in idx]


def _fit_clips(
    paths: list[str], frames: int, local: _Extractor, pool: ProcessPoolExecutor | None, workers: int, tick: Any
) -> Iterator[Clip]:
    """Decoded fitting clips, streamed (a tier's fit may consume them one by one)."""
    if pool is None:
        for p in paths:
            try:
                clip = local.decode(p, frames=frames)
            except TiermemError:
                clip = None
            tick()
            if clip is not None:
                yield clip
    else:
        # In input order (a fit must not depend on which worker finished first), and only a few
        # clips ahead of the fit so memory stays bounded.
        ahead: collections.deque[Future[Clip | None]] = collections.deque()
        queue = iter(paths)
        while True:
            while len(ahead) < 4 * workers and (p := next(queue, None)) is not None:
                ahead.append(pool.submit(_worker_decode_for_fit, p, frames))
            if not ahead:
                return
            clip = ahead.popleft().result()
            tick()
            if clip is not None:
                yield clip


def _run_batches(
    batches: list[list[_Job]], local: _Extractor, pool: ProcessPoolExecutor | None, spec: _TierSpec, workers: int
) -> Iterator[list[_Outcome]]:
    """Outcomes batch by batch, in completion order; at most 2 batches per worker in flight."""
    if pool is None:
        for batch in batches:
            yield local.run(batch)
        return
    pending: set[Future[list[_Outcome]]] = set()
    queue = iter(batches)
    limit = 2 * workers
    while True:
        while len(pending) < limit and (batch := next(queue, None)) is not None:
            pending.add(pool.submit(_worker_run, spec, batch))
        if not pending:
            return
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            yield fut.result()


def _record(
    outcome: _Outcome,
    tiers: dict[str, Tier],
    keys: dict[str, str],
    writers: dict[str, Any],
    report: ExtractReport,
) -> None:
    job = outcome.job
    errors = list(outcome.errors)
    for name, values in outcome.values.items():
        names = tiers[name].feature_names
        if values.shape != (len(names),):
            errors.append(f"tier {name}: {values.size} values for {len(names)} feature names")
            continue
        bad = [names[j] for j in np.flatnonzero(~np.isfinite(values))]
        if bad:
            errors.append(f"tier {name}: non-finite values in {', '.join(bad[:5])}")
            continue
        writers[name].add(
            FeatureRow(job.video_id, job.path, job.content_hash, keys[name], values, outcome.facts.get(name, {}))
        )
    if errors:
        report.failed.append((job.path, "; ".join(errors)))
    else:
        report.done.append(job.video_id)

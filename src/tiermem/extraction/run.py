"""One extraction run: cache check, fitting, batches handed to workers, rows written (steps in the package docstring)."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console

from tiermem.errors import DataMismatchError, TiermemError
from tiermem.extraction.report import ExtractReport
from tiermem.extraction.workers import START_METHOD, Extractor, Job, TierSpec, fit_clips, init_worker, record, run_batches
from tiermem.inputs import VIDEO_EXTENSIONS, PathInputs, as_path_list, find_videos, video_ids
from tiermem.runtime import default_threads, set_threads
from tiermem.store import FeatureStore, SavedState, content_hash, load_state_file
from tiermem.tiers import Tier, get_tier

if TYPE_CHECKING:
    from rich.progress import Progress


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
    workers, state, ...) this takes as they are.
    """
    start = time.monotonic()
    _requested_tiers(tiers, options.get("workers", 1), options.get("batch_size", 8))
    named = as_path_list(paths_or_dirs)
    paths = find_videos(named)
    if not paths:
        raise TiermemError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in {', '.join(map(str, named))}")
    report = extract_videos(paths, tiers=tiers, out=out, **options)
    report.seconds = time.monotonic() - start
    return report


def extract_videos(
    paths: Sequence[Path],
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
    """Extract `tiers` for the video files `paths` (as found by `find_videos`: no directory is searched here).

    `state`: a directory holding ``<tier>.state.npz`` files (the `out` of a run on the training
    split) or one such file; fitted tiers then use it instead of fitting here. Returns an
    `ExtractReport`; files that fail are in `report.failed`, the run does not stop for them.
    """
    start = time.monotonic()
    tiers = _requested_tiers(tiers, workers, batch_size)
    if not paths:
        raise TiermemError("no video files given")
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
        local = Extractor(built, decode_options, decode_threads=0)

        pool: ProcessPoolExecutor | None = None

        def get_pool() -> ProcessPoolExecutor:
            nonlocal pool
            if pool is None:
                pool = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context(START_METHOD),
                    initializer=init_worker,
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
                clips = fit_clips(sample, fit_frames, local, decoders, workers, lambda: bar.advance(fit_task))
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
        jobs: list[Job] = []
        for i in readable:
            need = [n for n in tiers if not store.cached(n, ids[i], hashes[i], keys[n])]
            if need:
                jobs.append(Job(str(paths[i]), ids[i], hashes[i], need))
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
        spec = TierSpec(
            store=str(store.root.resolve()),
            tiers=tuple((n, json.dumps(t.config, sort_keys=True, default=str)) for n, t in built.items()),
            config_hashes=tuple(t.config_hash() for t in built.values()),
        )
        parallel = get_pool() if workers > 1 and len(batches) > 1 else None
        for outcomes in run_batches(batches, local, parallel, spec, workers):
            for o in outcomes:
                record(o, built, keys, writers, report)
                bar.advance(task)
                if report.failed:
                    bar.update(task, description=f"extracting {', '.join(tiers)} ({len(report.failed)} failed)")
    # leaving the stack flushed every writer, shut the pool down and released the lock
    report.done.sort()
    report.skipped.sort()
    report.failed.sort()
    report.seconds = time.monotonic() - start
    return report


def _requested_tiers(tiers: Sequence[str], workers: int, batch_size: int) -> list[str]:
    """The tiers asked for, each once, in order; refuses an empty list and non-positive counts."""
    names = list(dict.fromkeys(tiers))
    if not names:
        raise TiermemError("no tiers requested")
    if workers < 1 or batch_size < 1:
        raise TiermemError(f"workers and batch size must be >= 1 (got {workers}, {batch_size})")
    return names


def _progress(console: Console, enabled: bool) -> Progress:
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

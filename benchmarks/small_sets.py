"""Small-set study: which M3-S training settings beat ridge when a set has a few hundred videos.

TRECVid 2020 has 442 labelled videos (354 per training fold); the M3-S head tuned on the
6000-7000-video sets lost to ridge there. This study chooses the head's settings *without
TRECVid and without the validation videos realbench.py reports on*: it draws subsets from
the training part of the Memento10k and VideoMem benchmark splits (seed 0, 15% validation
held out, exactly as realbench.py carves them) and scores each head on other training-part
videos.

- small: 354 training videos (a TRECVid fold), scored on 2000 others; 6 draws.
- large: all but 1500 training-part videos, scored on those 1500; 2 draws.

Rows, each adding one change to the one above (the last is benchmarks/realbench.py's setting):
ridge; M3-S as before (dropout 0.5, 5 seeds sharing one 10% early-stopping split, output
bias from torch's init); + output bias started at the mean score; + each seed stopping on
its own split; + 30% splits; + 10 seeds. Figures are mean Spearman over the draws.

    TIERMEM_THREADS=1 .venv/bin/python benchmarks/small_sets.py [--sizes small,large]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realbench as rb  # noqa: E402  (the benchmark's sets, split and text blocks)

from tiermem.blocks import join_blocks, load_block  # noqa: E402
from tiermem.datasets import read_realbench  # noqa: E402
from tiermem.metrics import spearman  # noqa: E402
from tiermem.model import M3SHead, RidgeHead, TrainConfig  # noqa: E402
from tiermem.model.registry import get_head  # noqa: E402
from tiermem.runtime import set_threads  # noqa: E402
from tiermem.splits import split_train_val  # noqa: E402

console = Console()
#: (set, target, the set's M3-S loss): VideoMem long-term is the noisy-label stand-in for TRECVid.
PROXIES = (
    ("videomem", "short_term"),
    ("videomem", "long_term"),
    ("memento10k", "scores_normalized_short_term"),
)
SIZES = {"small": (354, 2000, 6), "large": (-1500, 1500, 2)}  # n_train (<0: all but), n_eval, draws
CHOSEN: list[str] = []  # what the auto head kept, per fit of the current row


@dataclass(frozen=True)
class Setting:
    label: str
    ensemble: int = 5
    early_stopping: float = 0.1
    shared_split: bool = False  # one split for every seed (how the head trained before)
    init_bias: bool = True


SETTINGS = (
    Setting("M3-S before: 5 seeds, one shared 10% split", shared_split=True, init_bias=False),
    Setting("+ output bias at the mean score", shared_split=True),
    Setting("+ each seed its own 10% split"),
    Setting("+ 30% splits", early_stopping=0.3),
    Setting("+ 10 seeds (realbench setting)", ensemble=10, early_stopping=0.3),
)
#: The auto head (the default): under 2000 training videos ridge or the realbench M3-S setting,
#: chosen by 5-fold CV on the training draw; from 2000 on, that M3-S setting without CV.
AUTO = "auto (default): under 2000 videos ridge or the row above by 5-fold CV, else the row above"


def training_part(set_name: str, target: str, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of realbench.py's training part (its validation videos removed)."""
    spec = rb.SETS[set_name]
    ds = read_realbench(rb.DEFAULT_REALBENCH / set_name)
    blocks = [load_block(ds.tables[b], b) for b in spec.tables]
    if spec.text_block:
        blocks.append(rb.text_block(ds, spec.text_block, cache, 1))
    lab = ds.labelled(target)
    joined = join_blocks(blocks, lab.ids)
    y = lab.target(target)[joined.rows]
    tr, _ = split_train_val(len(y), 0.15, 0)  # realbench.py's split (seed 0, 15%)
    return joined.X[tr], y[tr]


def fit_predict(
    setting: Setting | str | None, loss: str, seed: int, X: np.ndarray, y: np.ndarray, Xe: np.ndarray
) -> np.ndarray:
    if setting is None:
        return RidgeHead().fit(X, y).predict(Xe)
    d = rb.M3S_SETTINGS
    if setting == AUTO:
        last = SETTINGS[-1]
        cfg = TrainConfig(loss=loss, weight_decay=d["weight_decay"], seed=seed, ensemble=last.ensemble)
        m3s = {
            "hidden": d["hidden"],
            "dropout": d["dropout"],
            "train": cfg.to_dict(),
            "early_stopping": last.early_stopping,
        }
        head = get_head("auto", m3s=m3s, seed=seed).fit(X, y)
        CHOSEN.append(head.chosen_)
        return head.predict(Xe)
    assert isinstance(setting, Setting)
    cfg = TrainConfig(loss=loss, weight_decay=d["weight_decay"], seed=seed, ensemble=setting.ensemble,
                      init_bias=setting.init_bias)  # fmt: skip
    head = M3SHead(hidden=d["hidden"], dropout=d["dropout"], train=cfg, early_stopping=setting.early_stopping)
    if setting.shared_split:
        tr, es = split_train_val(len(y), setting.early_stopping, seed + 1)
        return head.fit(X[tr], y[tr], X[es], y[es]).predict(Xe)
    return head.fit(X, y).predict(Xe)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument(
        "--rows", default="all", help="all, or 'final': ridge, the realbench setting and the auto head only"
    )
    ap.add_argument("--cache", type=Path, default=rb.REPO / "benchmarks" / "out" / "cache")
    args = ap.parse_args()
    set_threads()
    data = {(s, t): training_part(s, t, args.cache) for s, t in PROXIES}
    for size in args.sizes.split(","):
        n_train, n_eval, draws = SIZES[size]
        table = Table(title=f"{size}: mean Spearman over {draws} draws (training-part videos only)")
        table.add_column("head")
        for s, t in PROXIES:
            table.add_column(f"{s} {t.split('_')[0] if s == 'videomem' else ''}".strip(), justify="right")
        table.add_column("mean", justify="right")
        table.add_column("s", justify="right")
        rows = (None, *SETTINGS, AUTO) if args.rows == "all" else (None, SETTINGS[-1], AUTO)
        for setting in rows:
            CHOSEN.clear()
            t0, row = time.perf_counter(), []
            for (s, t), (X, y) in data.items():
                loss = rb.SETS[s].loss
                rhos = []
                for d in range(draws):
                    perm = np.random.default_rng(100 + d).permutation(len(y))
                    tr = perm[:n_train]
                    ev = perm[n_train : n_train + n_eval] if n_train > 0 else perm[n_train:]
                    rhos.append(spearman(y[ev], fit_predict(setting, loss, d, X[tr], y[tr], X[ev])))
                row.append(float(np.mean(rhos)))
            label = "ridge" if setting is None else setting if isinstance(setting, str) else setting.label
            if CHOSEN:
                label += f" (kept ridge {CHOSEN.count('ridge')} / m3s {CHOSEN.count('m3s')} times)"
            table.add_row(
                label, *(f"{r:.3f}" for r in row), f"{np.mean(row):.3f}", f"{time.perf_counter() - t0:.0f}"
            )
            console.print(f"  {size} {label}: " + " ".join(f"{r:.3f}" for r in row), highlight=False)
        (console if console.is_terminal else Console(width=130)).print(table)


if __name__ == "__main__":
    main()

"""What distinctiveness adds on real memorability labels (../shared/realbench), honestly.

For each set, a ridge head (sklearn RidgeCV on standardised inputs) is fitted on a training
split of `labels_train.csv` and scored on the held-out validation part (Spearman). The
baseline uses the source block alone; each method then adds its distinctiveness features,
fitted with the training split as context (training rows get leave-one-out values, validation
rows are scored as new videos). Repeated random splits give mean +- std of the paired gain.
The "alone" column is the Spearman of the method's scalar distinctiveness score with the
label on validation (positive = more distinctive videos are more memorable). A control row
adds only each video's source-vector length ‖x‖, which the cosine features divide by.

    python benchmarks/distinctiveness.py                       # all sets, all methods, 3 splits
    python benchmarks/distinctiveness.py --sets trecvid2020 --splits 5 --markdown out.md

Memento10k's block is the text tier (`tiermem.tiers.text`: mean of the five captions' unit
all-MiniLM-L6-v2 embeddings, offline), stored under benchmarks/out/memento10k_text/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tiermem.blocks import load_block
from tiermem.distinctiveness import get_distinctiveness
from tiermem.metrics import spearman
from tiermem.runtime import set_threads

REALBENCH = Path(
    os.environ.get("TIERMEM_REALBENCH", Path(__file__).resolve().parents[2] / "shared" / "realbench")
)
OUT = Path(__file__).resolve().parent / "out"
METHODS = ("knn", "kde", "cosine", "dbscan")
ALPHAS = np.logspace(-2, 5, 15)


def caption_embeddings(captions_csv: Path, store: Path) -> pd.DataFrame:
    """video_id-indexed text-tier vectors of each video's captions (cached in a feature store)."""
    from tiermem.tiers.text import embed_captions_table

    block = load_block(embed_captions_table(captions_csv, store, cache_dir=store / "cache"), "captions")
    return pd.DataFrame(block.values, index=block.ids)


def load_set(name: str) -> tuple[str, np.ndarray, np.ndarray]:
    """(block name, features X (N, D), labels y) for the labelled videos of one set."""
    root = REALBENCH / name
    if name == "memento10k":
        labels = pd.read_csv(root / "labels_train.csv", dtype={"video_id": str})
        emb = caption_embeddings(root / "captions.csv", OUT / "memento10k_text")
        return (
            "captions",
            emb.loc[labels["video_id"]].to_numpy(np.float64),
            labels["scores_normalized_short_term"].to_numpy(np.float64),
        )
    block_file = {
        "videomem": "features_coco80_rn152.parquet",
        "trecvid2020": "features_c3d_rn18_sports1m.parquet",
    }[name]
    labels = pd.read_csv(root / "labels_train.csv", dtype={"video_id": str})
    block = load_block(root / block_file)
    pos = {v: i for i, v in enumerate(block.ids)}
    X = block.values[[pos[v] for v in labels["video_id"]]].astype(np.float64)
    return block.name, X, labels["short_term"].to_numpy(np.float64)


def ridge_spearman(Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray) -> float:
    head = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS)).fit(Xtr, ytr)
    return spearman(yva, head.predict(Xva))


def run(sets: list[str], methods: list[str], splits: int, val_fraction: float) -> pd.DataFrame:
    rows = []
    with Progress(transient=True) as progress:
        task = progress.add_task("splits", total=len(sets) * splits * (len(methods) + 2))
        for name in sets:
            block, X, y = load_set(name)
            for seed in range(splits):
                perm = np.random.default_rng(seed).permutation(len(y))
                n_val = int(round(val_fraction * len(y)))
                va, tr = perm[:n_val], perm[n_val:]
                base = ridge_spearman(X[tr], y[tr], X[va], y[va])
                rows.append(
                    dict(
                        set=name,
                        block=block,
                        method="none",
                        seed=seed,
                        spearman=base,
                        alone=np.nan,
                        n_features=0,
                        fit_s=0.0,
                        info="",
                    )
                )
                progress.advance(task)
                # Control: the source vector's length alone. Cosine features divide by it, so part
                # of what they add can be this norm (e.g. how much a video's captions agree).
                norm = np.linalg.norm(X, axis=1, keepdims=True)
                s = ridge_spearman(np.hstack([X[tr], norm[tr]]), y[tr], np.hstack([X[va], norm[va]]), y[va])
                rows.append(
                    dict(
                        set=name,
                        block=block,
                        method="‖x‖ (control)",
                        seed=seed,
                        spearman=s,
                        alone=spearman(y[va], norm[va, 0]),
                        n_features=1,
                        fit_s=0.0,
                        info="",
                    )
                )
                added = []
                for method in methods:
                    t0 = time.perf_counter()
                    seeded = {} if method == "cosine" else {"random_state": seed}
                    est = get_distinctiveness(method, source=block, **seeded)
                    Ftr = est.fit_transform(X[tr])
                    Fva = est.transform(X[va])
                    fit_s = time.perf_counter() - t0
                    added.append((Ftr, Fva))
                    s = ridge_spearman(np.hstack([X[tr], Ftr]), y[tr], np.hstack([X[va], Fva]), y[va])
                    summ = est.summary()
                    info = (
                        f"{summ['n_clusters']} clusters, noise {summ['noise_share']:.2f}, "
                        f"MLP acc {summ['classifier_accuracy']:.2f}"
                        if method == "dbscan"
                        else ""
                    )
                    rows.append(
                        dict(
                            set=name,
                            block=block,
                            method=method,
                            seed=seed,
                            spearman=s,
                            alone=spearman(y[va], est.score_features(Fva)),
                            n_features=Ftr.shape[1],
                            fit_s=fit_s,
                            info=info,
                        )
                    )
                    progress.advance(task)
                if len(methods) > 1:
                    s = ridge_spearman(
                        np.hstack([X[tr], *(a for a, _ in added)]),
                        y[tr],
                        np.hstack([X[va], *(b for _, b in added)]),
                        y[va],
                    )
                    rows.append(
                        dict(
                            set=name,
                            block=block,
                            method="+".join(methods),
                            seed=seed,
                            spearman=s,
                            alone=np.nan,
                            n_features=sum(a.shape[1] for a, _ in added),
                            fit_s=0.0,
                            info="",
                        )
                    )
    return pd.DataFrame(rows)


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    base = raw[raw.method == "none"].set_index(["set", "seed"])["spearman"]
    raw = raw.assign(gain=raw.spearman.to_numpy() - base.loc[list(zip(raw.set, raw.seed))].to_numpy())
    return (
        raw.groupby(["set", "block", "method"], sort=False)
        .agg(
            spearman=("spearman", "mean"),
            spearman_sd=("spearman", "std"),
            gain=("gain", "mean"),
            gain_sd=("gain", "std"),
            alone=("alone", "mean"),
            n_features=("n_features", "max"),
            fit_s=("fit_s", "mean"),
            info=("info", "last"),
        )
        .reset_index()
    )


def to_markdown(summary: pd.DataFrame, splits: int, val_fraction: float) -> str:
    lines = [
        f"Validation Spearman, ridge head, mean ± sd over {splits} random {1 - val_fraction:.0%}/"
        f"{val_fraction:.0%} splits of labels_train.csv (context = training part).",
        "",
        "| set | block | + distinctiveness | Spearman | gain over block alone | score alone | features | fit s | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        gain = "—" if r.method == "none" else f"{r.gain:+.4f} ± {r.gain_sd:.4f}"
        alone = "—" if np.isnan(r.alone) else f"{r.alone:+.3f}"
        lines.append(
            f"| {r.set} | {r.block} | {r.method} | {r.spearman:.4f} ± {r.spearman_sd:.4f} | {gain} | "
            f"{alone} | {r.n_features} | {r.fit_s:.1f} | {r.info} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="videomem,memento10k,trecvid2020")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--splits", type=int, default=3)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--markdown", type=Path, help="also write the table here")
    args = p.parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)
    if not REALBENCH.is_dir():
        console.print(f"realbench not found at {REALBENCH} (set TIERMEM_REALBENCH); nothing to measure")
        return 1
    set_threads()
    logging.basicConfig(level=logging.WARNING)
    sets, methods = args.sets.split(","), args.methods.split(",")
    summary = summarise(run(sets, methods, args.splits, args.val_fraction))

    table = Table(title=f"distinctiveness on realbench: validation Spearman (ridge), {args.splits} splits")
    for col in ("set", "block", "+ distinct", "Spearman", "gain", "score alone", "feats", "fit s", "notes"):
        table.add_column(col, justify="left" if col in ("set", "block", "+ distinct", "notes") else "right")
    for r in summary.itertuples():
        table.add_row(
            r.set,
            r.block,
            r.method,
            f"{r.spearman:.4f} ± {r.spearman_sd:.4f}",
            "—" if r.method == "none" else f"{r.gain:+.4f} ± {r.gain_sd:.4f}",
            "—" if np.isnan(r.alone) else f"{r.alone:+.3f}",
            str(r.n_features),
            f"{r.fit_s:.1f}",
            r.info,
        )
    console.print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(to_markdown(summary, args.splits, args.val_fraction))
        console.print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

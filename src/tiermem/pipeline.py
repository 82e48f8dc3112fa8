"""The fitted whole: tiers + distinctiveness + head, saved as one artifact directory.

    fit:      dataset -> extract every tier (cached) -> fit low-tier PCA, normalisers and the
              distinctiveness context on the TRAINING split only -> train the head -> evaluate
    predict:  raw videos -> the same tiers with the saved fitted state -> score, percentile,
              exact Shapley contribution of each tier, and the facts behind them

Artifact layout (loading executes no code: JSON, npz with allow_pickle=False, safetensors):

    pipeline.json          schema version, config, versions, blocks, evaluation
    tiers/<tier>.state.npz fitted tier state (e.g. the low tier's HOG PCA), as the feature store saves it
    distinct/<method>.npz  fitted distinctiveness contexts
    head/                  the head (head.json + weights.safetensors)
    arrays.npz             training predictions (percentiles), Shapley baseline, t-SNE maps
    evaluation/            validation predictions and the tier ablation (CSV)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from tiermem import __version__
from tiermem.blocks import Block, BlockLayout, join_blocks, load_block
from tiermem.datasets import Dataset
from tiermem.errors import DataMismatchError, TiermemError
from tiermem.evaluate import evaluate, midrank_percentile
from tiermem.extract import ExtractReport, extract, find_videos, video_ids
from tiermem.store import FeatureStore

ARTIFACT_SCHEMA = 1
DISTINCT_BLOCK = "distinct"
#: Tiers whose input is text rather than frames: they need captions at fit and predict time.
TEXT_TIERS = ("text",)


@dataclass
class PipelineConfig:
    """What to extract and how to learn; every field is JSON-able and saved in the artifact."""

    target: str
    tiers: list[str] = field(default_factory=lambda: ["low", "mid"])
    distinct: list[str] = field(default_factory=list)  # distinctiveness methods, e.g. ["knn"]
    distinct_source: str = "mid"
    distinct_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> params
    head: str = "m3s"
    head_params: dict[str, Any] = field(default_factory=dict)
    tier_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    frames: int = 45
    size: int = 256
    mode: str = "stretch"
    val_fraction: float = 0.1
    seed: int = 0
    ablate: bool = True

    def validate(self) -> None:
        if not self.tiers:
            raise TiermemError("a pipeline needs at least one tier")
        if self.distinct and self.distinct_source not in self.tiers:
            raise TiermemError(
                f"distinctiveness source tier {self.distinct_source!r} is not among the tiers "
                f"({', '.join(self.tiers)})"
            )
        if len(self.tiers) + bool(self.distinct) > 6:
            raise TiermemError("at most 6 blocks (tiers + distinctiveness): exact Shapley costs 2^n")
        # Checked before extraction, which can take hours: a typo should fail in a second.
        from tiermem.distinctiveness import available_methods
        from tiermem.model.head import HEADS
        from tiermem.tiers import available_tiers

        unknown = [t for t in self.tiers if t not in available_tiers()]
        if unknown:
            raise TiermemError(f"unknown tier(s) {', '.join(unknown)}; available: {', '.join(available_tiers())}")
        bad = [m for m in self.distinct if m not in available_methods()]
        if bad:
            raise TiermemError(f"unknown distinctiveness method(s) {', '.join(bad)}; available: {', '.join(available_methods())}")
        if self.head not in HEADS:
            raise TiermemError(f"unknown head {self.head!r}; available: {', '.join(HEADS)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise TiermemError(f"val_fraction must be in (0, 1), got {self.val_fraction}: the fit reports on a validation split")


@dataclass
class Predictions:
    """Scores of videos with their explanations; `table` is what `--json`/CSV output shows."""

    table: pd.DataFrame  # video_id, path, score, percentile, contrib_<block>...
    contributions: list[dict[str, float]]
    facts: list[dict[str, Any]]
    base_score: float | None
    failed: list[tuple[str, str]]
    zero_shot: bool = False

    def records(self) -> list[dict[str, Any]]:
        """JSON-able, one dict per video."""
        out = []
        for i, row in enumerate(self.table.to_dict(orient="records")):
            rec = {k: v for k, v in row.items() if not str(k).startswith("contrib_")}
            rec["contributions"] = self.contributions[i] if self.contributions else {}
            rec["facts"] = self.facts[i] if self.facts else {}
            out.append(rec)
        return out


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------
def extract_features(
    paths: Sequence[str | Path],
    tiers: Sequence[str],
    store_dir: Path,
    *,
    config: PipelineConfig,
    state: Path | None = None,
    captions: dict[str, list[str]] | None = None,
    workers: int = 1,
    console: Console | None = None,
    progress: bool = True,
) -> ExtractReport | None:
    """Extract the frame tiers of `paths` and the text tier of `captions` into one store."""
    frame_tiers = [t for t in tiers if t not in TEXT_TIERS]
    report = None
    if frame_tiers and len(paths):
        report = extract(
            list(paths),
            tiers=frame_tiers,
            out=store_dir,
            frames=config.frames,
            size=config.size,
            mode=config.mode,
            workers=workers,
            tier_config=config.tier_config,
            state=state,
            progress=progress,
            console=console,
        )
    if any(t in TEXT_TIERS for t in tiers):
        if not captions:
            raise TiermemError("the text tier needs captions (give a captions CSV)")
        from tiermem.tiers.text import embed_captions

        embed_captions(captions, store_dir, source="dataset captions")
    return report


def load_tier_blocks(store_dir: Path, tiers: Sequence[str]) -> list[Block]:
    """One block per tier from the store's Parquet tables."""
    store = FeatureStore(store_dir)
    blocks = []
    for tier in tiers:
        path = store.table_path(tier)
        if not path.exists():
            raise DataMismatchError(f"no {tier} features in {store_dir} (every video failed?)")
        blocks.append(load_block(path, name=tier))
    return blocks


def load_facts(store_dir: Path, tiers: Sequence[str], ids: Sequence[str]) -> list[dict[str, Any]]:
    """Per video, {tier: facts} from the store's `facts` column (top labels, faces ...)."""
    store = FeatureStore(store_dir)
    by_tier: dict[str, dict[str, Any]] = {}
    for tier in tiers:
        table = store.table(tier)
        if table is not None and "facts" in table:
            by_tier[tier] = dict(zip(table["video_id"].astype(str), table["facts"]))
    out = []
    for vid in ids:
        facts: dict[str, Any] = {}
        for tier, column in by_tier.items():
            raw = column.get(vid)
            parsed = json.loads(raw) if isinstance(raw, str) and raw else {}
            if parsed:
                facts[tier] = parsed
        out.append(facts)
    return out


# ---------------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------------
class Pipeline:
    """Tiers + distinctiveness + head. Construct with a config; `fit` learns; `predict` scores."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    # -- learning -----------------------------------------------------------------------------
    def fit(
        self,
        dataset: Dataset,
        cache: str | os.PathLike[str],
        *,
        workers: int = 1,
        console: Console | None = None,
    ) -> "Pipeline":
        """Extract, fit everything on the training split only, train the head, evaluate."""
        from tiermem.distinctiveness import get_distinctiveness
        from tiermem.model.experiment import split_train_val
        from tiermem.model.head import make_head

        cfg = self.config
        cfg.validate()
        console = console or Console()
        if dataset.paths is None and any(t not in TEXT_TIERS for t in cfg.tiers):
            raise TiermemError(f"dataset {dataset.name} has no video files; frame tiers need videos")
        if cfg.target not in dataset.scores:
            raise DataMismatchError(
                f"dataset {dataset.name} has no target {cfg.target!r}; it has {', '.join(dataset.scores.columns)}"
            )
        store_dir = Path(cache)
        store_dir.mkdir(parents=True, exist_ok=True)
        y_all = dataset.scores[cfg.target].to_numpy(dtype=np.float64)
        labelled = np.isfinite(y_all)
        split = np.asarray(dataset.split if dataset.split is not None else ["train"] * len(dataset.ids))
        ids = np.asarray(dataset.ids).astype(str)
        # Published splits: "dev" (MediaEval) is a validation set; videos a split file does not
        # list ("unlisted") are left out rather than trained on.
        train = labelled & (split == "train")
        val = labelled & np.isin(split, ["val", "dev"])
        test = labelled & (split == "test")
        other = labelled & ~(train | val | test)
        if other.any():
            console.print(f"[yellow]{int(other.sum())} labelled videos in no train/val/test split "
                          f"({', '.join(sorted(set(split[other])))}) are left out[/]")
        if not val.any():  # carve a seeded validation split out of the training videos
            pos = np.flatnonzero(train)
            tr, va = split_train_val(len(pos), cfg.val_fraction, cfg.seed)
            train = np.zeros_like(train)
            train[pos[tr]] = True
            val[pos[va]] = True
        if train.sum() < 3:
            raise DataMismatchError(f"dataset {dataset.name}: only {int(train.sum())} labelled training videos")
        captions = dict(zip(ids, dataset.captions)) if dataset.captions is not None else None
        paths = np.asarray(dataset.paths if dataset.paths is not None else [""] * len(ids))
        if dataset.paths is not None:  # the feature store keys videos by file name
            stems = np.array([Path(p).stem for p in paths])
            clash = np.flatnonzero(stems != ids)
            if clash.size:
                i = int(clash[0])
                raise DataMismatchError(
                    f"dataset {dataset.name}: video id {ids[i]!r} is not its file's name ({paths[i]}); "
                    f"{clash.size} such videos: name the files <video_id>.<ext>"
                )
        # Fitted tier state (the low tier's HOG PCA) must come from the training videos: drop any
        # state this cache holds from another run, so extraction refits it on the training split
        # (a deterministic refit on the same videos gives the same state, keeping cached rows).
        for tier in cfg.tiers:
            FeatureStore(store_dir).state_path(tier).unlink(missing_ok=True)

        console.rule("[bold]features: training split (fits the tiers' state)")
        rep_train = extract_features(
            paths[train], cfg.tiers, store_dir, config=cfg, captions=captions, workers=workers, console=console
        )
        others = val | test
        if others.any():
            console.rule("[bold]features: validation/test splits (training state reused)")
            rep_other = extract_features(
                paths[others], [t for t in cfg.tiers if t not in TEXT_TIERS], store_dir,
                config=cfg, state=store_dir, workers=workers, console=console,
            )
        else:
            rep_other = None
        failed = [f for r in (rep_train, rep_other) if r is not None for f in r.failed]
        if failed:
            console.print(f"[yellow]{len(failed)} videos failed to extract and are left out:[/]")
            for path, reason in failed[:10]:
                console.print(f"  {path}: {reason}")

        bad = {Path(p).stem for p, _ in failed}
        if bad:  # an old cached row of a file that fails now must not be used
            keep = ~np.isin(ids, list(bad))
            train, val, test = train & keep, val & keep, test & keep
        blocks = load_tier_blocks(store_dir, cfg.tiers)
        tr_join = join_blocks(blocks, ids[train], on_missing="drop")
        va_join = join_blocks(blocks, ids[val], layout=tr_join.layout, on_missing="drop")
        te_join = join_blocks(blocks, ids[test], layout=tr_join.layout, on_missing="drop") if test.any() else None
        index = {v: i for i, v in enumerate(ids)}
        y_of = lambda join: y_all[[index[v] for v in join.ids]]  # noqa: E731

        X_tr, X_va = tr_join.X, va_join.X
        X_te = te_join.X if te_join is not None else None
        layout = list(tr_join.layout)
        self.distinct_ = []
        if cfg.distinct:
            src = tr_join.slices[cfg.distinct_source]
            parts_tr, parts_va, parts_te, names = [], [], [], []
            for method in cfg.distinct:
                est = get_distinctiveness(method, source=cfg.distinct_source, **cfg.distinct_params.get(method, {}))
                parts_tr.append(est.fit_transform(X_tr[:, src]))  # leave-one-out on the context
                parts_va.append(est.transform(X_va[:, src]))
                if X_te is not None:
                    parts_te.append(est.transform(X_te[:, src]))
                names += est.feature_names
                console.print(f"distinctiveness {method}: {json.dumps(_short_summary(est.summary()))}")
                self.distinct_.append(est)
            X_tr = np.hstack([X_tr, *parts_tr]).astype(np.float32)
            X_va = np.hstack([X_va, *parts_va]).astype(np.float32)
            if X_te is not None:
                X_te = np.hstack([X_te, *parts_te]).astype(np.float32)
            layout.append(BlockLayout(DISTINCT_BLOCK, names))

        y_tr, y_va = y_of(tr_join), y_of(va_join)
        console.rule(f"[bold]head: {cfg.head}")
        head = make_head(cfg.head, **cfg.head_params)
        head.fit(X_tr, y_tr, layout=layout)  # epochs are picked on an inner split, not on val
        self.head_ = head
        self.layout_ = layout
        self.block_names_ = [b.name for b in layout]
        self.baseline_ = X_tr.mean(axis=0).astype(np.float64)
        self.train_predictions_ = np.sort(head.predict(X_tr).astype(np.float64))
        self.train_scores_ = np.sort(y_tr)

        evaluation: dict[str, Any] = {
            "n_train": int(len(y_tr)),
            "n_val": int(len(y_va)),
            "failed": [{"path": str(p), "reason": r} for p, r in failed],
            "dropped": tr_join.dropped + va_join.dropped,
            "val": evaluate(y_va, head.predict(X_va)).to_dict() if len(y_va) >= 3 else None,
        }
        if X_te is not None and te_join is not None and len(te_join.ids) >= 3:
            evaluation["test"] = evaluate(y_of(te_join), head.predict(X_te)).to_dict()
            evaluation["n_test"] = int(len(te_join.ids))
        self.evaluation_ = evaluation

        # What the report shows: validation predictions with contributions, ablation, maps.
        va_paths = [str(paths[index[v]]) for v in va_join.ids]
        shap = self._shapley(X_va)
        val_table = pd.DataFrame({"video_id": va_join.ids, "path": va_paths, "true": y_va, "score": shap.scores})
        for j, name in enumerate(shap.tier_names):
            val_table[f"contrib_{name}"] = shap.values[:, j]
        self.val_predictions_ = val_table
        self.val_facts_ = load_facts(store_dir, cfg.tiers, list(va_join.ids))
        self.ablation_ = (
            self._ablation(X_tr, y_tr, X_va, y_va, layout, console) if cfg.ablate and len(layout) > 1 else None
        )
        self.maps_ = _tsne_maps(
            np.vstack([X_tr, X_va]), np.concatenate([y_tr, y_va]), layout, seed=cfg.seed
        )
        self.store_dir_ = str(store_dir)
        return self

    def _ablation(
        self, X_tr: np.ndarray, y_tr: np.ndarray, X_va: np.ndarray, y_va: np.ndarray,
        layout: list[BlockLayout], console: Console,
    ) -> pd.DataFrame:
        """Every block alone, all but one, all: the configured head and ridge beside it."""
        from tiermem.model.experiment import ablation_configs
        from tiermem.model.head import make_head

        offsets = np.cumsum([0] + [len(b.feature_names) for b in layout])
        cols_of = {b.name: np.arange(offsets[i], offsets[i + 1]) for i, b in enumerate(layout)}
        by_name = {b.name: b for b in layout}
        heads = [self.config.head] + (["ridge"] if self.config.head != "ridge" else [])
        rows = []
        configs = ablation_configs([b.name for b in layout])
        with console.status("tier ablation") as status:
            for label, names in configs:
                cols = np.concatenate([cols_of[n] for n in names])
                for kind in heads:
                    status.update(f"tier ablation: {label} ({kind})")
                    params = self.config.head_params if kind == self.config.head else {}
                    head = make_head(kind, **params).fit(X_tr[:, cols], y_tr, layout=[by_name[n] for n in names])
                    m = evaluate(y_va, head.predict(X_va[:, cols]))
                    rows.append({"tiers": label, "head": kind, **m.to_dict()})
        return pd.DataFrame(rows)

    # -- inference ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "head_"):
            raise TiermemError("this pipeline is not fitted: run `tiermem fit` or Pipeline.fit first")

    def _features(self, joined_X: np.ndarray, slices: dict[str, slice]) -> np.ndarray:
        if not self.distinct_:
            return joined_X
        src = joined_X[:, slices[self.config.distinct_source]]
        return np.hstack([joined_X, *[est.transform(src) for est in self.distinct_]]).astype(np.float32)

    def _shapley(self, X: np.ndarray):  # -> tiermem.explain.TierShapley
        from tiermem.explain import tier_shapley

        offsets = np.cumsum([0] + [len(b.feature_names) for b in self.layout_])
        tiers = {b.name: slice(int(offsets[i]), int(offsets[i + 1])) for i, b in enumerate(self.layout_)}
        return tier_shapley(self.head_.predict, X, tiers, self.baseline_)

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Percentile (0-100) of scores among the head's predictions on the training videos."""
        return midrank_percentile(self.train_predictions_, scores)

    def predict(
        self,
        paths_or_dirs: Sequence[str | os.PathLike[str]],
        *,
        cache: str | os.PathLike[str] | None = None,
        captions: dict[str, list[str]] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        workers: int = 1,
        console: Console | None = None,
        progress: bool = True,
    ) -> Predictions:
        """Score raw videos; files that fail are listed in `failed`, the rest still get scores."""
        self._check_fitted()
        console = console or Console(stderr=True)
        paths = find_videos(paths_or_dirs)
        ids = video_ids(paths)
        with tempfile.TemporaryDirectory(prefix="tiermem-predict-") as tmp:
            store_dir = Path(cache) if cache is not None else Path(tmp)
            tier_caps = None
            if any(t in TEXT_TIERS for t in self.config.tiers):
                tier_caps = {v: (captions or {}).get(v, []) for v in ids}
                lacking = [v for v, c in tier_caps.items() if not c]
                if lacking:
                    raise TiermemError(
                        f"this model uses the text tier: no captions for {len(lacking)} videos ({', '.join(lacking[:3])})"
                    )
            state = Path(state_dir) if state_dir else self.state_dir
            report = extract_features(
                paths, self.config.tiers, store_dir, config=self.config, state=state, captions=tier_caps,
                workers=workers, console=console, progress=progress,
            )
            failed = list(report.failed) if report is not None else []
            bad = {Path(p).stem for p, _ in failed}
            ok_ids = [v for v in ids if v not in bad]
            if not ok_ids:
                return Predictions(pd.DataFrame(columns=["video_id", "path", "score", "percentile"]), [], [], None, failed)
            blocks = load_tier_blocks(store_dir, self.config.tiers)
            tier_layout = [b for b in self.layout_ if b.name != DISTINCT_BLOCK]
            joined = join_blocks(blocks, ok_ids, layout=tier_layout)
            X = self._features(joined.X, joined.slices)
            facts = load_facts(store_dir, self.config.tiers, list(joined.ids))
        shap = self._shapley(X)
        path_of = dict(zip(ids, map(str, paths)))
        table = pd.DataFrame(
            {
                "video_id": joined.ids,
                "path": [path_of[v] for v in joined.ids],
                "score": shap.scores,
                "percentile": self.percentile(shap.scores),
            }
        )
        for j, name in enumerate(shap.tier_names):
            table[f"contrib_{name}"] = shap.values[:, j]
        return Predictions(table, shap.as_dicts(), facts, shap.base_score, failed)

    # -- persistence --------------------------------------------------------------------------
    def save(self, out: str | os.PathLike[str]) -> Path:
        """Write the artifact directory atomically (built beside it, then renamed into place)."""
        self._check_fitted()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
        try:
            self._write(tmp)
            if out.exists():
                backup = out.with_name(f".{out.name}.old")
                shutil.rmtree(backup, ignore_errors=True)
                out.rename(backup)
                tmp.rename(out)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    def _write(self, d: Path) -> None:
        store = FeatureStore(self.state_dir)
        (d / "tiers").mkdir()
        for tier in self.config.tiers:
            src = store.state_path(tier)
            if src.exists():
                shutil.copy2(src, d / "tiers" / src.name)
        (d / "distinct").mkdir()
        for est in self.distinct_:
            est.save(d / "distinct" / f"{est.method}.npz")
        self.head_.save(d / "head")
        arrays = {
            "baseline": self.baseline_,
            "train_predictions": self.train_predictions_,
            "train_scores": self.train_scores_,
        }
        for name, (xy, colour) in self.maps_.items():
            arrays[f"map_{name}_xy"] = xy
            arrays[f"map_{name}_colour"] = colour
        np.savez(d / "arrays.npz", **arrays)
        (d / "evaluation").mkdir()
        self.val_predictions_.to_csv(d / "evaluation" / "val_predictions.csv", index=False)
        (d / "evaluation" / "val_facts.json").write_text(json.dumps(self.val_facts_))
        if self.ablation_ is not None:
            self.ablation_.to_csv(d / "evaluation" / "ablation.csv", index=False)
        meta = {
            "schema_version": ARTIFACT_SCHEMA,
            "kind": "tiermem.pipeline",
            "versions": _versions(),
            "config": asdict(self.config),
            "layout": [b.to_dict() for b in self.layout_],
            "distinct": [est.method for est in self.distinct_],
            "maps": sorted(self.maps_),
            "evaluation": self.evaluation_,
        }
        (d / "pipeline.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Pipeline":
        """Read an artifact directory; refuses unknown schema versions and damaged files."""
        d = Path(path)
        meta_path = d / "pipeline.json"
        if not meta_path.exists():
            raise TiermemError(f"{d}: not a tiermem model (no pipeline.json)")
        try:
            return cls._read(d, meta_path)
        except TiermemError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise TiermemError(f"{d}: not a readable tiermem model ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _read(cls, d: Path, meta_path: Path) -> "Pipeline":
        from tiermem.distinctiveness import Distinctiveness
        from tiermem.model.head import load_head

        meta = json.loads(meta_path.read_text())
        if meta.get("schema_version") != ARTIFACT_SCHEMA:
            raise TiermemError(
                f"{meta_path}: schema version {meta.get('schema_version')} (this tiermem reads {ARTIFACT_SCHEMA})"
            )
        self = cls(PipelineConfig(**meta["config"]))
        self.layout_ = [BlockLayout.from_dict(b) for b in meta["layout"]]
        self.block_names_ = [b.name for b in self.layout_]
        self.distinct_ = [Distinctiveness.load(d / "distinct" / f"{m}.npz") for m in meta["distinct"]]
        self.head_ = load_head(d / "head")
        with np.load(d / "arrays.npz", allow_pickle=False) as arrays:
            self.baseline_ = arrays["baseline"]
            self.train_predictions_ = arrays["train_predictions"]
            self.train_scores_ = arrays["train_scores"]
            self.maps_ = {m: (arrays[f"map_{m}_xy"], arrays[f"map_{m}_colour"]) for m in meta["maps"]}
        self.evaluation_ = meta["evaluation"]
        self.val_predictions_ = pd.read_csv(d / "evaluation" / "val_predictions.csv", dtype={"video_id": str})
        self.val_facts_ = json.loads((d / "evaluation" / "val_facts.json").read_text())
        ablation = d / "evaluation" / "ablation.csv"
        self.ablation_ = pd.read_csv(ablation) if ablation.exists() else None
        self.artifact_dir_ = str(d)
        return self

    @property
    def state_dir(self) -> Path:
        """Where this pipeline's fitted tier state lives: the artifact's tiers/, or the fit's cache."""
        if hasattr(self, "artifact_dir_"):
            return Path(self.artifact_dir_) / "tiers"
        return Path(self.store_dir_)


# ---------------------------------------------------------------------------------------------
# zero-shot scoring and helpers
# ---------------------------------------------------------------------------------------------
def zero_shot_predict(
    paths_or_dirs: Sequence[str | os.PathLike[str]],
    *,
    cache: str | os.PathLike[str] | None = None,
    frames: int = 45,
    size: int = 256,
    workers: int = 1,
    console: Console | None = None,
    progress: bool = True,
) -> Predictions:
    """Score videos without a video-trained model: the mean ResMem frame memorability (prior tier).

    The percentile is within the videos scored together, since no training corpus exists.
    """
    console = console or Console(stderr=True)
    paths = find_videos(paths_or_dirs)
    with tempfile.TemporaryDirectory(prefix="tiermem-zeroshot-") as tmp:
        store_dir = Path(cache) if cache is not None else Path(tmp)
        report = extract(paths, tiers=["prior"], out=store_dir, frames=frames, size=size,
                         workers=workers, progress=progress, console=console)
        table = FeatureStore(store_dir).table("prior")
        ids = [v for v in video_ids(paths) if table is not None and v in set(table["video_id"])]
        facts = load_facts(store_dir, ["prior"], ids)
    if not ids:
        return Predictions(pd.DataFrame(columns=["video_id", "path", "score", "percentile"]), [], [], None,
                           list(report.failed), zero_shot=True)
    table = table.set_index("video_id").loc[ids]
    scores = table["prior_mean"].to_numpy(dtype=np.float64)
    pct = midrank_percentile(np.sort(scores), scores)
    out = pd.DataFrame({"video_id": ids, "path": table["path"].to_numpy(), "score": scores, "percentile": pct})
    return Predictions(out, [], facts, None, list(report.failed), zero_shot=True)


def _short_summary(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("features",)}


def _tsne_maps(
    X: np.ndarray, y: np.ndarray, layout: Sequence[BlockLayout], *, seed: int = 0, max_points: int = 1500
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """2-D t-SNE of each block (standardised, PCA to 30 first), coloured by memorability."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(X))[:max_points])
    X, y = X[keep], y[keep]
    maps = {}
    start = 0
    for b in layout:
        block = X[:, start : start + len(b.feature_names)].astype(np.float64)
        start += len(b.feature_names)
        if len(block) < 10:
            continue
        block = (block - block.mean(0)) / (block.std(0) + 1e-8)
        n_pca = min(30, len(block) - 1)
        if block.shape[1] > n_pca:
            block = PCA(n_components=n_pca, random_state=seed).fit_transform(block)
        perplexity = float(min(30, max(2, (len(block) - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(block)
        maps[b.name] = (xy.astype(np.float32), y.astype(np.float32))
    return maps


def _versions() -> dict[str, str]:
    import sklearn
    import torch

    return {"tiermem": __version__, "torch": torch.__version__, "scikit-learn": sklearn.__version__,
            "numpy": np.__version__}


__all__ = ["Pipeline", "PipelineConfig", "Predictions", "extract_features", "zero_shot_predict"]

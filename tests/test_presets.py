"""The m3s-reference preset and the two reporting protocols: on real VideoMem labels through
`tiermem train --json`, on the API's head options, and through a whole fit on videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REALBENCH
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.errors import TiermemError
from tiermem.model import get_head
from tiermem.model.losses import get_loss, tail_weights
from tiermem.model.options import HeadOptions
from tiermem.model.protocols import PAPER_LABEL, best_epochs_on, two_protocols
from tiermem.presets import get_preset, list_presets
from tiermem.standardise import Standardiser

VIDEOMEM = REALBENCH / "videomem"
needs_videomem = pytest.mark.skipif(
    not (VIDEOMEM / "labels_train.csv").is_file(),
    reason=f"real VideoMem labels/features not found at {VIDEOMEM} (../shared/realbench)",
)
runner = CliRunner()


def test_presets_resolve_by_dataset_and_given_options_win() -> None:
    assert list_presets() == ["m3s", "m3s-reference", "m3s-reference-memento10k", "m3s-reference-videomem"]
    assert get_preset("m3s-reference", "videomem").name == "m3s-reference-videomem"
    assert get_preset("m3s-reference", "data/videomem/labels_train.csv").name == "m3s-reference-videomem"
    assert (
        get_preset("m3s-reference", "memento10k").name
        == get_preset("m3s-reference").name
        == "m3s-reference-memento10k"
    )
    with pytest.raises(TiermemError, match="unknown preset 'paper'; available: m3s, m3s-reference"):
        get_preset("paper")
    videomem = HeadOptions(preset="m3s-reference").with_preset("videomem")
    assert videomem.head == "m3s" and videomem.step_size == 8
    assert (videomem.lr, videomem.weight_decay, videomem.gamma) == pytest.approx(
        (4.0574e-4, 1.1226e-5, 0.28521), rel=1e-4
    )
    assert videomem.loss == "mse_to_spearman" and videomem.standardise == ["low"]
    assert videomem.loss_params == {
        "rank": "permutahedron",
        "strength": 1.0,
        "target_rank": "soft",
        "weight": 0.01,
    }
    memento = HeadOptions(preset="m3s-reference").with_preset("memento10k")
    assert (memento.loss, memento.loss_params, memento.lr, memento.step_size) == (
        "mse",
        {},
        1e-3,
        5,
    )  # the released command
    tails = HeadOptions(
        preset="m3s-reference", lr=3e-4, loss="mse_tails", loss_params={"c": 1.0}
    ).with_preset("memento10k")
    assert (
        tails.lr == 3e-4
        and tails.gamma == 0.2
        and tails.loss_params == {"c": 1.0, "p": 4.0, "centre": 0.80099205}
    )
    assert (
        HeadOptions().with_preset("videomem") == HeadOptions().with_preset()
    )  # m3s: the same for every dataset
    assert (HeadOptions().with_preset().head, HeadOptions().with_preset().lr) == ("auto", 1e-3)
    ridge = HeadOptions(head="ridge", preset="m3s-reference")
    assert (
        ridge.params("videomem") == {} and ridge.with_preset("videomem").lr is None
    )  # no epochs: no training settings
    params = HeadOptions(preset="m3s-reference").params("videomem")
    assert params["train"]["step_size"] == 8 and params["standardise"] == ["low"]


def test_a_value_given_wins_over_the_preset_even_when_it_is_the_default() -> None:
    """--lr 1e-3 under the VideoMem reference preset (lr 4.06e-4) trains at 1e-3; so for every
    training setting given at its default value, and for --head auto."""
    given = HeadOptions(preset="m3s-reference", lr=1e-3, gamma=0.2, step_size=5, head="auto").with_preset(
        "videomem"
    )
    assert (given.lr, given.gamma, given.step_size, given.head) == (1e-3, 0.2, 5, "auto")
    assert given.weight_decay == pytest.approx(1.1226e-5, rel=1e-4)  # left unset: the preset's
    assert HeadOptions(preset="m3s-reference", lr=1e-3).params("videomem")["train"]["lr"] == 1e-3
    with pytest.raises(TiermemError, match="--lr applies to the m3s head only, not ridge"):
        HeadOptions(head="ridge", lr=1e-3).params()  # given, even at the default: refused for ridge


def test_reference_losses_and_a_parameter_a_loss_does_not_take() -> None:
    target = torch.tensor([0.30, 0.75, 0.80099205, 0.95, 0.99], dtype=torch.float64)
    w = tail_weights(target, c=2.0, p=4.0, centre=0.80099205)
    raw = 1 + 2 * np.abs(target.numpy() - 0.80099205) ** 4
    np.testing.assert_allclose(w.numpy(), raw / raw.mean())
    assert 0.97 < float(w.min()) and float(w.max()) < 1.1  # the reference's weights barely vary
    pred = torch.tensor([0.2, 0.7, 0.6, 0.9, 0.8], dtype=torch.float64)
    # Soft ranks of both sides at strength 1 on [0, 1] values are affine: the loss is Pearson.
    pearson = float(np.corrcoef(pred.numpy(), target.numpy())[0, 1])
    ref = get_loss("spearman", rank="permutahedron", strength=1.0, target_rank="soft", weight=0.01)
    assert float(ref(pred, target)) == pytest.approx(0.01 * (1 - pearson), abs=1e-12)
    with pytest.raises(TiermemError, match=r"loss mse takes no parameter c \(its parameters: none\)"):
        get_loss("mse", c=2.0)
    with pytest.raises(TiermemError, match="target_rank must be one of hard, soft"):
        HeadOptions(head="m3s", loss="spearman", loss_params={"target_rank": "exact"}).params()


def test_standardising_only_named_blocks() -> None:
    from tiermem.blocks import BlockLayout

    rng = np.random.default_rng(0)
    X = np.hstack([rng.normal(5, 3, (200, 2)), rng.normal(0, 0.1, (200, 3))]).astype(np.float32)
    y = 1 / (1 + np.exp(-(X[:, 0] - 5)))
    layout = [BlockLayout("low", ["a", "b"]), BlockLayout("mid", ["c", "d", "e"])]
    head = get_head("m3s", standardise=["low"], hidden=[8], train={"epochs": 2}).fit(X, y, layout=layout)
    np.testing.assert_allclose(head.normaliser_.mean_[2:], 0.0)
    np.testing.assert_allclose(head.normaliser_.scale_[2:], 1.0)
    np.testing.assert_allclose(head.normaliser_.mean_[:2], X[:, :2].mean(axis=0), rtol=1e-5)
    mask = Standardiser().fit(X, np.array([False, True, False, False, True]))
    assert mask.mean_[0] == 0 and mask.scale_[1] == pytest.approx(X[:, 1].std(), rel=1e-5)


def test_the_paper_protocol_picks_epochs_on_validation_and_never_scores_below_the_honest_one() -> None:
    rng = np.random.default_rng(1)
    y = rng.uniform(size=60)
    # Three members, four epochs; member 0's epoch 2 and member 2's epoch 3 track y best.
    watched = rng.normal(size=(3, 4, 60))
    watched[0, 2] += 3 * y
    watched[2, 3] += 3 * y
    chosen = best_epochs_on(watched, y, [0, 0, 0])
    assert chosen[0] == 2 and chosen[2] == 3
    one = watched[:1]
    rhos = [pd.Series(one[0, e]).corr(pd.Series(y), method="spearman") for e in range(4)]
    assert best_epochs_on(one, y, [1]) == [int(np.argmax(rhos))]  # one net: the best epoch outright
    assert best_epochs_on(np.ones((2, 3, 60)), y, [1, 2]) == [
        1,
        2,
    ]  # constant scores rank nothing: kept as they are

    X = rng.normal(size=(300, 5)).astype(np.float32)
    target = 1 / (1 + np.exp(-X[:, 0] - 0.5 * rng.normal(size=300)))
    m3s = get_head("m3s", hidden=[16], train={"epochs": 6, "ensemble": 2}).fit(
        X[:240], target[:240], watch=X[240:]
    )
    both = two_protocols(m3s, X[240:], target[240:])
    assert m3s.watched_.shape == (2, 6, 60) and both.honest_epochs == m3s.best_epochs_
    assert both.best_epoch_on_val.spearman >= both.honest.spearman
    honest_again = m3s.watched_[np.arange(2), both.honest_epochs].mean(axis=0)
    np.testing.assert_allclose(honest_again, m3s.predict(X[240:]), atol=1e-6)  # watching chose nothing
    ridge = get_head("ridge").fit(X[:240], target[:240], watch=X[240:])
    flat = two_protocols(ridge, X[240:], target[240:])
    assert (
        flat.best_epoch_on_val == flat.honest and flat.to_dict()["best_epoch_on_val"]["label"] == PAPER_LABEL
    )


@needs_videomem
def test_train_with_the_reference_preset_prints_both_protocols(tmp_path: Path) -> None:
    labels = pd.read_csv(VIDEOMEM / "labels_train.csv", dtype={"video_id": str}).sample(
        n=1500, random_state=0
    )
    (tmp_path / "videomem").mkdir()
    labels.to_csv(tmp_path / "videomem" / "labels.csv", index=False)
    result = runner.invoke(
        app,
        [
            "train",
            "--labels",
            str(tmp_path / "videomem" / "labels.csv"),
            "--target",
            "short_term",
            "--block",
            f"coco={VIDEOMEM / 'features_coco80_rn152.parquet'}",
            "--preset",
            "m3s-reference",
            "--val-fraction",
            "0.2",
            "--out",
            str(tmp_path / "model"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["preset"] == "m3s-reference-videomem" and doc["head"] == "m3s"
    train = doc["head_params"]["train"]
    assert (train["step_size"], train["loss"]) == (8, "mse_to_spearman") and train["gamma"] == pytest.approx(
        0.2852, abs=1e-4
    )
    honest, paper = doc["validation"]["honest"], doc["validation"]["best_epoch_on_val"]
    assert honest["n"] == paper["n"] == 300 and paper["label"] == "optimistic (paper protocol)"
    assert paper["spearman"] >= honest["spearman"] > 0.2
    assert 0 <= paper["epochs"][0] < 20 and len(honest["epochs"]) == 1
    saved = json.loads((tmp_path / "model" / "head.json").read_text())["params"]
    assert saved["standardise"] == ["low"] and saved["train"]["loss_params"]["target_rank"] == "soft"


@needs_videomem
def test_ablate_reports_both_protocols(tmp_path: Path) -> None:
    labels = pd.read_csv(VIDEOMEM / "labels_train.csv", dtype={"video_id": str}).sample(n=600, random_state=1)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    result = runner.invoke(
        app,
        [
            "ablate",
            "--labels",
            str(tmp_path / "labels.csv"),
            "--target",
            "short_term",
            "--block",
            f"rn152={VIDEOMEM / 'features_coco80_rn152.parquet'}",
            "--block",
            f"rn101={VIDEOMEM / 'features_coco80_rn101.parquet'}",
            "--head",
            "m3s",
            "--epochs",
            "5",
            "--hidden",
            "32",
            "--val-fraction",
            "0.25",
            "--out",
            str(tmp_path / "ab"),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "ab.csv")
    assert len(table) == 3 and (table["spearman_best_epoch_on_val"] >= table["spearman"] - 1e-12).all()
    assert PAPER_LABEL in (tmp_path / "ab.md").read_text()


def test_fit_on_videos_with_the_reference_preset(memento_root: Path, tmp_path: Path) -> None:
    """Every pipeline-level choice lands in the artifact; both protocols come out of `fit --json`;
    the saved model scores a new video; distinctiveness can read several source tiers."""
    from conftest import PIPELINE_FRAMES, PIPELINE_SIZE

    import tiermem
    from tiermem.datasets import read_dataset
    from tiermem.distinctiveness import Distinctiveness

    model, cache = tmp_path / "model", tmp_path / "cache"
    result = runner.invoke(
        app,
        [
            "fit",
            "--dataset",
            "memento10k",
            "--root",
            str(memento_root),
            "--tiers",
            "low,mid",
            "--preset",
            "m3s-reference",
            "--frames",
            str(PIPELINE_FRAMES),
            "--size",
            str(PIPELINE_SIZE),
            "--no-ablate",
            "--cache",
            str(cache),
            "--out",
            str(model),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert (doc["preset"], doc["head"], doc["distinct"], doc["distinct_source"]) == (
        "m3s-reference-memento10k",
        "m3s",
        ["dbscan"],
        "mid",
    )  # no high tier here: mid only
    honest, paper = doc["validation"]["honest"], doc["validation"]["best_epoch_on_val"]
    assert honest["spearman"] == pytest.approx(
        doc["val"]["spearman"], abs=1e-12
    )  # the refit is the saved head
    assert paper["spearman"] >= honest["spearman"] and paper["label"] == PAPER_LABEL
    meta = json.loads((model / "pipeline.json").read_text())
    assert meta["config"]["tier_config"]["low"] == {
        "hog_colour": True,
        "pca_whiten": True,
        "pca_frames_per_clip": 1,
        "temporal_std": False,
        "extras": False,
        "pca_components": 10,
    }
    low = next(b for b in meta["layout"] if b["name"] == "low")
    assert len(low["feature_names"]) == 15
    head = json.loads((model / "head" / "head.json").read_text())["params"]
    assert head["train"]["loss"] == "mse" and head["standardise"] == ["low"]
    dbscan = Distinctiveness.load(model / "distinct" / "dbscan.npz")
    assert (dbscan.eps_, dbscan.noise_column, dbscan.tsne_init, dbscan.hidden_layer_sizes) == (
        1.25,
        "last-cluster",
        "random",
        (100,),
    )
    res = runner.invoke(
        app, ["predict", str(memento_root / "videos" / "synthetic_1.mp4"), "--model", str(model), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert 0 <= json.loads(res.stdout)[0]["score"] <= 1

    # Two source tiers: one context each, saved apart, read back with identical scores.
    ds = read_dataset("memento10k", memento_root)
    pipe = tiermem.fit(
        ds,
        cache=cache,
        tiers=["low", "mid"],
        distinct=["knn"],
        distinct_source="low,mid",
        head="ridge",
        distinct_params={"knn": {"k": 3}, "knn@low": {"k": 2}},
        frames=PIPELINE_FRAMES,
        size=PIPELINE_SIZE,
        ablate=False,
    )
    assert [(e.source, e.k) for e in pipe.distinct_] == [("low", 2), ("mid", 3)]
    saved = pipe.save(tmp_path / "two")
    assert sorted(p.name for p in (saved / "distinct").iterdir()) == ["knn@low.npz", "knn@mid.npz"]
    video = memento_root / "videos" / "synthetic_1.mp4"
    assert (
        tiermem.load(saved).predict(video).table["score"].tolist()
        == pipe.predict(video).table["score"].tolist()
    )


def test_schedule_and_loss_options_on_the_command_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    ids = [f"v{i}" for i in range(120)]
    X = rng.normal(size=(120, 4))
    pd.DataFrame({"video_id": ids, **{f"f{j}": X[:, j] for j in range(4)}}).to_csv(
        tmp_path / "block.csv", index=False
    )
    pd.DataFrame({"video_id": ids, "score": 1 / (1 + np.exp(-X[:, 0]))}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    common = [
        "train",
        "--labels",
        str(tmp_path / "labels.csv"),
        "--target",
        "score",
        "--block",
        f"f={tmp_path / 'block.csv'}",
        "--head",
        "m3s",
        "--epochs",
        "3",
        "--hidden",
        "8",
    ]
    refused = runner.invoke(app, [*common, "--tail-c", "2", "--out", str(tmp_path / "no")])
    assert refused.exit_code == 1 and "loss mse takes no parameter c" in refused.output
    assert not (tmp_path / "no").exists()
    ok = runner.invoke(
        app,
        [
            *common,
            "--loss",
            "mse_to_spearman",
            "--rank",
            "permutahedron",
            "--rank-strength",
            "0.5",
            "--target-rank",
            "soft",
            "--spearman-weight",
            "0.01",
            "--lr-step",
            "2",
            "--lr-gamma",
            "0.5",
            "--out",
            str(tmp_path / "model"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    train = json.loads((tmp_path / "model" / "head.json").read_text())["params"]["train"]
    assert (train["step_size"], train["gamma"]) == (2, 0.5)
    assert train["loss_params"] == {
        "weight": 0.01,
        "rank": "permutahedron",
        "strength": 0.5,
        "target_rank": "soft",
    }
    history = json.loads((tmp_path / "model" / "head.json").read_text())["state"]["history"][0]
    assert [round(e["lr"], 8) for e in history] == [1e-3, 1e-3, 5e-4]  # StepLR(2, 0.5)

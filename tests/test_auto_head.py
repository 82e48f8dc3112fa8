"""The auto head: ridge or M3-S chosen by cross-validation on the training videos only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REALBENCH
from scipy.stats import spearmanr
from sklearn.model_selection import KFold
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.model import load_head
from tiermem.model.options import HeadOptions
from tiermem.model.registry import get_head

VIDEOMEM = REALBENCH / "videomem"
SMALL_M3S = {"hidden": [32], "train": {"epochs": 4, "seed": 0}}


@pytest.fixture(scope="module")
def linear() -> tuple[np.ndarray, np.ndarray]:
    """300 videos whose score is a noisy logistic of one of 20 features: ridge's home ground."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20)).astype(np.float32)
    return X, 1 / (1 + np.exp(-(X[:, 0] + 0.5 * rng.normal(size=300))))


def test_choice_is_the_better_cross_validated_candidate(linear) -> None:
    X, y = linear
    head = get_head("auto", m3s=SMALL_M3S, folds=3, seed=1).fit(X, y)
    # The out-of-fold Spearman of each candidate, recomputed by hand with the same folds.
    for kind, params in (("ridge", {}), ("m3s", SMALL_M3S)):
        oof = np.empty(len(y))
        for train, held in KFold(3, shuffle=True, random_state=1).split(X):
            oof[held] = get_head(kind, **params).fit(X[train], y[train]).predict(X[held])
        assert head.cv_spearman_[kind] == pytest.approx(spearmanr(oof, y).statistic, abs=1e-9)
    assert head.chosen_ == max(head.cv_spearman_, key=head.cv_spearman_.get)
    assert head.chosen_ == "ridge"  # a linear target on 300 videos
    direct = get_head(head.chosen_, **({} if head.chosen_ == "ridge" else SMALL_M3S)).fit(X, y)
    np.testing.assert_allclose(head.predict(X), direct.predict(X), atol=1e-12)  # refitted on every video


def test_validation_data_is_never_used(linear) -> None:
    X, y = linear
    a = get_head("auto", m3s=SMALL_M3S, folds=3).fit(X, y)
    b = get_head("auto", m3s=SMALL_M3S, folds=3).fit(X, y, X_val=X[:50] * 0, y_val=np.ones(50))
    assert a.cv_spearman_ == b.cv_spearman_ and a.chosen_ == b.chosen_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_saved_and_loaded_as_it_was(linear, tmp_path: Path) -> None:
    X, y = linear
    y100 = 100 * y  # a target outside [0, 1]: scaled in and out through the auto head
    head = get_head("auto", m3s=SMALL_M3S, folds=3).fit(X, y100)
    again = load_head(head.save(tmp_path / "auto"))
    assert again.chosen_ == head.chosen_ and again.cv_spearman_ == head.cv_spearman_
    np.testing.assert_allclose(again.predict(X), head.predict(X), atol=1e-9)
    assert head.predict(X).max() > 1.5  # in the target's units
    saved = json.loads((tmp_path / "auto" / "head.json").read_text())
    assert saved["kind"] == "auto" and saved["state"]["auto.chosen"] == head.chosen_


def test_m3s_options_reach_the_candidate_and_are_checked() -> None:
    params = HeadOptions(head="auto", epochs=3, hidden=(16,), seed=4).params()
    assert params["seed"] == 4 and params["m3s"]["train"]["epochs"] == 3 and params["m3s"]["hidden"] == [16]
    with pytest.raises(Exception, match="apply to the m3s head only|applies to the m3s head only"):
        HeadOptions(head="ridge", epochs=3).params()
    with pytest.raises(Exception, match="folds must be at least 2"):
        get_head("auto", folds=1).check_params()


@pytest.mark.skipif(
    not (VIDEOMEM / "labels_train.csv").is_file(), reason=f"real VideoMem labels not found at {VIDEOMEM}"
)
def test_cli_train_with_the_auto_head_on_real_labels(tmp_path: Path) -> None:
    labels = pd.read_csv(VIDEOMEM / "labels_train.csv", dtype={"video_id": str}).sample(n=400, random_state=0)
    labels.to_csv(tmp_path / "train.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--labels",
            str(tmp_path / "train.csv"),
            "--target",
            "short_term",
            "--block",
            f"coco={VIDEOMEM / 'features_coco80_rn152.parquet'}",
            "--head",
            "auto",
            "--epochs",
            "3",
            "--hidden",
            "32",
            "--out",
            str(tmp_path / "model"),
        ],
    )
    assert result.exit_code == 0, result.output
    head = load_head(tmp_path / "model")
    assert (
        head.name == "auto"
        and head.chosen_ in ("ridge", "m3s")
        and set(head.cv_spearman_) == {"ridge", "m3s"}
    )


def test_too_few_videos_to_cross_validate_keep_ridge() -> None:
    X = np.arange(15, dtype=np.float32).reshape(5, 3)
    head = get_head("auto", m3s=SMALL_M3S).fit(X, np.array([0.1, 0.4, 0.3, 0.9, 0.5]))
    assert head.chosen_ == "ridge" and head.cv_spearman_ == {}
    assert head.predict(X).shape == (5,)


def test_large_sets_keep_m3s_without_cross_validation(linear) -> None:
    X, y = linear
    head = get_head("auto", m3s=SMALL_M3S, cv_below=len(y)).fit(X, y)  # 300 videos: "large" here
    assert head.chosen_ == "m3s" and head.cv_spearman_ == {}
    np.testing.assert_allclose(head.predict(X), get_head("m3s", **SMALL_M3S).fit(X, y).predict(X), atol=1e-12)
    assert "2000" not in head.describe_choice() and "300+ training videos" in head.describe_choice()
    small = get_head("auto", m3s=SMALL_M3S, folds=3, cv_below=len(y) + 1).fit(X, y)
    assert set(small.cv_spearman_) == {"ridge", "m3s"}  # one video fewer than the bar: cross-validated


def test_auto_is_the_default_head() -> None:
    from tiermem.pipeline import PipelineConfig

    assert HeadOptions().with_preset().head == "auto" and PipelineConfig(target="score").head == "auto"
    assert get_head("auto").cv_below == 2000

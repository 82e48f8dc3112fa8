"""The kernel ridge head and the ensemble head: what they compute, how they save, what they refuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runs import run
from conftest import REALBENCH
from safetensors.numpy import load_file, save_file
from scipy.stats import spearmanr
from sklearn.kernel_ridge import KernelRidge

from tiermem.blocks import BlockLayout
from tiermem.errors import ArtifactError, DataMismatchError, TiermemError
from tiermem.model import kernel_ridge, load_head
from tiermem.model.options import HeadOptions
from tiermem.model.registry import get_head

SMALL_M3S = {"hidden": [32], "train": {"epochs": 5, "seed": 0}}
VIDEOMEM = REALBENCH / "videomem"


def bump(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that peak where the first of 6 features is near 0: no linear model ranks them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    return X, 1 / (1 + np.exp(-(2 * np.exp(-(X[:, 0] ** 2)) + 0.5 * X[:, 1] - 1)))


def test_kernel_ridge_ranks_what_ridge_cannot() -> None:
    X, y = bump(300, 0)
    X_new, y_new = bump(200, 1)
    kernel = spearmanr(get_head("kernel-ridge").fit(X, y).predict(X_new), y_new).statistic
    linear = spearmanr(get_head("ridge").fit(X, y).predict(X_new), y_new).statistic
    assert kernel > 0.9 and kernel > linear + 0.3


def test_kernel_ridge_is_scikit_learns_on_balanced_blocks() -> None:
    X, y = bump(120, 2)
    layout = [BlockLayout("a", ["a0", "a1", "a2", "a3"]), BlockLayout("b", ["b0", "b1"])]
    head = get_head("kernel-ridge", clip=False).fit(X, y, layout=layout)
    # Standardised columns, each block divided by the square root of its width, float32 precision.
    Z = (X - X.mean(0)) / X.std(0) / np.sqrt([4, 4, 4, 4, 2, 2])
    Z = Z.astype(np.float32).astype(np.float64)
    reference = KernelRidge(kernel="rbf", gamma=head.gamma_, alpha=head.alpha_).fit(Z, y - y.mean())
    np.testing.assert_allclose(head.predict(X), reference.predict(Z) + y.mean(), atol=1e-6)
    # gamma is relative to the number of blocks, and was chosen from the grid
    assert head.gamma_ * 2 in kernel_ridge.GAMMAS and head.alpha_ in kernel_ridge.ALPHAS
    assert (
        max(head.grid_spearman_.values())
        == head.grid_spearman_[
            (kernel_ridge.GAMMAS.index(head.gamma_ * 2), kernel_ridge.ALPHAS.index(head.alpha_))
        ]
    )


def test_a_wider_block_does_not_weigh_more() -> None:
    # The same information in 1 column or repeated in 3 gives the same kernel, so the same scores.
    X, y = bump(150, 3)
    one = [BlockLayout("a", ["a0"]), BlockLayout("b", [f"b{i}" for i in range(5)])]
    three = [BlockLayout("a", ["a0", "a0'", "a0''"]), BlockLayout("b", [f"b{i}" for i in range(5)])]
    wide = np.hstack([X[:, :1], X[:, :1], X])
    a = get_head("kernel-ridge").fit(X, y, layout=one)
    b = get_head("kernel-ridge").fit(wide, y, layout=three)
    np.testing.assert_allclose(a.predict(X[:40]), b.predict(wide[:40]), atol=1e-5)


def test_kernel_ridge_saves_its_support_and_refuses_damage(tmp_path: Path) -> None:
    X, y = bump(90, 4)
    head = get_head("kernel-ridge").fit(X, 100 * y)  # a target outside [0, 1]
    loaded = load_head(head.save(tmp_path / "kr"))
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))
    assert head.predict(X).max() > 1.5
    weights = tmp_path / "kr" / "weights.safetensors"
    arrays = load_file(str(weights))
    assert arrays["kernel.support"].shape == (90, 6) and arrays["kernel.support"].dtype == np.float32
    arrays["kernel.coef"] = arrays["kernel.coef"][:-1]
    save_file(arrays, str(weights))
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: 'kernel.coef': expected shape \(90,\)"):
        load_head(tmp_path / "kr")


def test_kernel_ridge_refuses_what_it_cannot_fit(monkeypatch) -> None:
    with pytest.raises(TiermemError, match="alphas must be positive"):
        get_head("kernel-ridge", alphas=[1.0, -1.0]).check_params()
    with pytest.raises(TiermemError, match=r"inner must be in \(0, 1\)"):
        get_head("kernel-ridge", inner=1.0).check_params()
    monkeypatch.setattr(kernel_ridge, "MAX_ROWS", 50)
    X, y = bump(60, 5)
    with pytest.raises(DataMismatchError, match="60 training videos .* at most 50 .*ridge or m3s"):
        get_head("kernel-ridge").fit(X, y)


def test_ensemble_is_the_mean_of_its_members(tmp_path: Path) -> None:
    X, y = bump(200, 6)
    head = get_head("ensemble", params={"m3s": SMALL_M3S}).fit(X, 100 * y)
    kernel = get_head("kernel-ridge").fit(X, 100 * y)
    m3s = get_head("m3s", **SMALL_M3S).fit(X, 100 * y)
    expected = (kernel.predict(X) + m3s.predict(X)) / 2
    np.testing.assert_allclose(head.predict(X), expected, atol=1e-9)
    scores = head.member_scores(X)
    assert list(scores) == ["kernel-ridge", "m3s"]
    np.testing.assert_allclose(scores["m3s"], m3s.predict(X), atol=1e-12)
    loaded = load_head(head.save(tmp_path / "ens"))
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))
    doc = json.loads((tmp_path / "ens" / "head.json").read_text())
    assert doc["kind"] == "ensemble" and doc["params"]["members"] == ["kernel-ridge", "m3s"]
    assert doc["state"]["ensemble.params"]["m3s"]["hidden"] == [32]
    assert "member.kernel-ridge.kernel.support" in load_file(str(tmp_path / "ens" / "weights.safetensors"))


def test_ensemble_refuses_bad_members_and_damaged_files(tmp_path: Path) -> None:
    for members, message in (
        (["ridge"], "at least 2 members"),
        (["ridge", "ridge"], "named twice"),
        (["ridge", "auto"], "'auto' cannot be a member"),
        (["ridge", "ensemble"], "'ensemble' cannot be a member"),
        (["ridge", "lasso"], "'lasso' cannot be a member"),
    ):
        with pytest.raises(TiermemError, match=message):
            get_head("ensemble", members=members).check_params()
    with pytest.raises(TiermemError, match="parameters given for m3s, which is not a member"):
        get_head("ensemble", members=["ridge", "kernel-ridge"], params={"m3s": {}}).check_params()
    X, y = bump(60, 7)
    get_head("ensemble", members=["ridge", "kernel-ridge"]).fit(X, y).save(tmp_path / "ens")
    weights = tmp_path / "ens" / "weights.safetensors"
    arrays = load_file(str(weights))
    arrays["member.ridge.ridge.coef"] = arrays["member.ridge.ridge.coef"][:3]
    save_file(arrays, str(weights))
    with pytest.raises(ArtifactError, match=r"'member.ridge.ridge.coef': expected shape \(6,\)"):
        load_head(tmp_path / "ens")


def test_head_options_reach_the_ensemble() -> None:
    params = HeadOptions(head="ensemble", epochs=3, hidden=(16,)).params()
    assert params["members"] == ["kernel-ridge", "m3s"]
    assert params["params"]["m3s"]["train"]["epochs"] == 3 and params["params"]["m3s"]["hidden"] == [16]
    assert HeadOptions(head="ensemble", members=("ridge", "kernel-ridge")).params() == {
        "members": ["ridge", "kernel-ridge"],
        "params": {},
    }
    with pytest.raises(TiermemError, match="--epochs applies to the m3s head only, not ensemble of ridge"):
        HeadOptions(head="ensemble", members=("ridge", "kernel-ridge"), epochs=3).params()
    with pytest.raises(TiermemError, match="--members applies to the ensemble head only, not m3s"):
        HeadOptions(head="m3s", members=("ridge", "m3s")).params()


@pytest.mark.skipif(
    not (VIDEOMEM / "labels_train.csv").is_file(), reason=f"real VideoMem labels not found at {VIDEOMEM}"
)
def test_cli_trains_and_predicts_with_the_ensemble(tmp_path: Path) -> None:
    labels = pd.read_csv(VIDEOMEM / "labels_train.csv", dtype={"video_id": str}).sample(n=300, random_state=1)
    labels.to_csv(tmp_path / "train.csv", index=False)
    block = f"coco={VIDEOMEM / 'features_coco80_rn152.parquet'}"
    result = run(
        "train", "--labels", tmp_path / "train.csv", "--target", "short_term", "--block", block,
        "--head", "ensemble", "--members", "kernel-ridge,m3s", "--epochs", "3", "--hidden", "32",
        "--out", tmp_path / "model",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    head = load_head(tmp_path / "model")
    assert head.name == "ensemble" and head.members == ["kernel-ridge", "m3s"]
    assert head.provenance_ == {"trained_on": 300, "validated_on": 30, "refitted": True}
    assert head.heads_[1].hidden == (32,) and head.heads_[1].train.epochs == 3
    result = run("predict", "--model", tmp_path / "model", "--block", block, "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "p.csv")
    assert len(scores) > 300 and scores["score"].between(0, 1).all()

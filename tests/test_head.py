"""Heads on real labels: M3-S and ridge learn VideoMem memorability from object features;
a fitted head is deterministic, keeps its best epoch, and round-trips through its directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REALBENCH
from sklearn.linear_model import Ridge

from tiermem.blocks import join_blocks, load_block
from tiermem.errors import DataMismatchError, TiermemError
from tiermem.metrics import read_scores, spearman
from tiermem.model import M3SHead, RidgeHead, TrainConfig, get_head, load_head
from tiermem.model.experiment import fit_on_blocks

VIDEOMEM = REALBENCH / "videomem"
pytestmark = pytest.mark.skipif(
    not (VIDEOMEM / "labels_train.csv").is_file(),
    reason=f"real VideoMem labels/features not found at {VIDEOMEM} (../shared/realbench)",
)


@pytest.fixture(scope="module")
def videomem():
    """2000 random VideoMem videos: 1500 to fit on (with its own validation split), 500 held out."""
    ids, y = read_scores(VIDEOMEM / "labels_train.csv", "short_term")
    block = load_block(VIDEOMEM / "features_coco80_rn152.parquet")
    pick = np.random.default_rng(0).permutation(ids.size)[:2000]
    fit, held = pick[:1500], pick[1500:]
    joined = join_blocks([block], ids[pick])
    return {
        "block": block,
        "fit_ids": ids[fit],
        "fit_y": y[fit],
        "held_X": joined.X[1500:],
        "held_y": y[held],
        "X": joined.X[:1500],
        "y": y[fit],
        "layout": joined.layout,
    }


# Floors, measured here (TIERMEM_THREADS=1): five random 1500/500 draws of VideoMem gave
# held-out Spearman 0.303-0.408 for this M3-S setting (0.408 for draw 0, the one tested) and
# 0.321-0.426 for ridge (0.426); validation Spearman of draw 0: 0.367 (M3-S), 0.372 (ridge).
# The floors sit about 0.05 below the worst draw, and far above chance: with 500 (300)
# videos a random predictor's |Spearman| exceeds 1.96/sqrt(n-1) = 0.088 (0.113) only 5% of
# the time. The shuffled-label control below shows the floor is not reachable by chance.
HELD_FLOOR = 0.25
VAL_FLOOR = 0.20


def test_m3s_and_ridge_learn_videomem_memorability(videomem) -> None:
    v = videomem
    m3s = M3SHead(train=TrainConfig(epochs=10, loss="mse_to_spearman"))
    res = fit_on_blocks(
        [v["block"]], v["fit_ids"], v["fit_y"], m3s, val_fraction=0.2, seed=0, n_resamples=200
    )
    assert res.val is not None and res.val.n == 300 and res.train.n == 1200
    assert res.val.spearman > VAL_FLOOR
    assert spearman(v["held_y"], res.head.predict(v["held_X"])) > HELD_FLOOR
    ridge = fit_on_blocks(
        [v["block"]], v["fit_ids"], v["fit_y"], RidgeHead(), val_fraction=0.2, seed=0, n_resamples=200
    )
    assert spearman(v["held_y"], ridge.head.predict(v["held_X"])) > HELD_FLOOR
    # Shuffled labels: same pipeline, nothing to learn, so the held-out correlation is chance.
    shuffled = np.random.default_rng(1).permutation(v["fit_y"])
    null = fit_on_blocks(
        [v["block"]], v["fit_ids"], shuffled, RidgeHead(), val_fraction=0.2, seed=0, n_resamples=200
    )
    assert abs(spearman(v["held_y"], null.head.predict(v["held_X"]))) < 0.12


def _small(v, n: int = 400):
    return v["X"][:n], v["y"][:n], v["X"][n : n + 200], v["y"][n : n + 200]


def test_training_is_seeded_and_keeps_the_best_epoch(videomem) -> None:
    X, y, Xv, yv = _small(videomem)
    cfg = dict(epochs=6, loss="mse", seed=3)
    a = M3SHead(hidden=(64, 16), train=TrainConfig(**cfg)).fit(X, y, Xv, yv)
    b = M3SHead(hidden=(64, 16), train=TrainConfig(**cfg)).fit(X, y, Xv, yv)
    c = M3SHead(hidden=(64, 16), train=TrainConfig(**{**cfg, "seed": 4})).fit(X, y, Xv, yv)
    np.testing.assert_array_equal(a.predict(Xv), b.predict(Xv))
    assert not np.allclose(a.predict(Xv), c.predict(Xv))
    rhos = [e.val_spearman for e in a.history_[0]]
    assert len(rhos) == 6 and a.best_epochs_ == [int(np.argmax(rhos))]
    assert spearman(yv, a.predict(Xv)) == pytest.approx(max(rhos), abs=1e-9)
    lrs = [e.lr for e in a.history_[0]]
    assert lrs[:5] == [1e-3] * 5 and lrs[5] == pytest.approx(2e-4)  # StepLR(5, 0.2)


def test_output_bias_starts_at_the_mean_score(videomem) -> None:
    X, y, _, _ = _small(videomem, 200)
    frozen = dict(epochs=1, lr=0.0, keep_best=False)  # lr 0: the weights stay as initialised
    net = M3SHead(hidden=(16,), train=TrainConfig(**frozen)).fit(X, y).members_[0]
    m = y.mean()
    assert net[-2].bias.item() == pytest.approx(np.log(m / (1 - m)), rel=1e-5)
    plain = M3SHead(hidden=(16,), train=TrainConfig(**frozen, init_bias=False)).fit(X, y).members_[0]
    assert abs(plain[-2].bias.item()) < 0.25  # torch's default init: U(-1/4, 1/4) for 16 inputs


def test_ensemble_members_stop_on_their_own_inner_splits(videomem) -> None:
    """Member k is exactly the single head of seed + k: its own seed and its own early-stopping
    split (seed + 1 + k), so the members together learn from every training video."""
    X, y, Xv, _ = _small(videomem)
    cfg = dict(epochs=3, loss="mse", seed=5)
    ens = M3SHead(hidden=(32,), train=TrainConfig(**cfg, ensemble=2), early_stopping=0.3).fit(X, y)
    singles = [
        M3SHead(hidden=(32,), train=TrainConfig(**{**cfg, "seed": 5 + k}), early_stopping=0.3).fit(X, y)
        for k in (0, 1)
    ]
    np.testing.assert_allclose(ens.predict(Xv), np.mean([s.predict(Xv) for s in singles], axis=0), rtol=1e-6)
    # Different splits: the members' validation curves are measured on different videos.
    assert ens.history_[0][0].val_spearman != ens.history_[1][0].val_spearman


def test_training_thread_count_is_restored(videomem) -> None:
    import torch

    X, y, _, _ = _small(videomem, 100)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        M3SHead(hidden=(8,), train=TrainConfig(epochs=1, threads=1)).fit(X, y)
        assert torch.get_num_threads() == 2  # training ran with 1 and gave the caller's back
    finally:
        torch.set_num_threads(before)


def test_standardiser_uses_training_statistics(videomem) -> None:
    X, y, Xv, _ = _small(videomem)
    h = RidgeHead().fit(X, y)
    np.testing.assert_allclose(h.normaliser_.mean_, X.astype(np.float64).mean(axis=0), rtol=1e-6)
    # Closed form: the same coefficients as sklearn's Ridge at the chosen alpha.
    Xs = h.normaliser_.transform(X).astype(np.float64)
    ref = Ridge(alpha=h.alpha_).fit(Xs, y)
    np.testing.assert_allclose(h.coef_, ref.coef_, rtol=1e-6, atol=1e-9)
    assert h.alpha_ not in (1e-3, 1e6)  # the CV grid is wide enough here


@pytest.mark.parametrize("kind", ["m3s", "ridge"])
def test_save_load_gives_identical_predictions(videomem, tmp_path: Path, kind: str) -> None:
    X, y, Xv, yv = _small(videomem)
    params = (
        {"hidden": (32, 8), "dropout": 0.2, "train": TrainConfig(epochs=2, ensemble=2)}
        if kind == "m3s"
        else {}
    )
    head = get_head(kind, **params).fit(X, y, Xv, yv, layout=videomem["layout"])
    out = head.save(tmp_path / "model")
    assert sorted(p.name for p in out.iterdir()) == ["head.json", "weights.safetensors"]
    doc = json.loads((out / "head.json").read_text())
    assert doc["schema_version"] == 1 and doc["kind"] == kind and "torch" in doc["versions"]
    assert doc["state"]["layout"][0]["name"] == "coco80_rn152"
    loaded = load_head(out)
    np.testing.assert_array_equal(loaded.predict(Xv), head.predict(Xv))
    assert loaded.layout_ == head.layout_
    again = type(head).from_state(head.get_params(), head.state_dict())
    np.testing.assert_array_equal(again.predict(Xv), head.predict(Xv))
    head.save(out)  # overwriting a model directory is allowed (atomically replaced)
    np.testing.assert_array_equal(load_head(out).predict(Xv), head.predict(Xv))
    if kind == "m3s":
        assert len(loaded.members_) == 2
        w0, w1 = (next(m.parameters()).detach().numpy() for m in loaded.members_)
        assert not np.allclose(w0, w1)  # two seeds, two different nets


def test_bad_model_directories_and_inputs(videomem, tmp_path: Path) -> None:
    X, y, Xv, _ = _small(videomem, 200)
    head = RidgeHead().fit(X, y)
    out = head.save(tmp_path / "m")
    with pytest.raises(DataMismatchError, match="trained on 80 features"):
        head.predict(Xv[:, :79])
    doc = json.loads((out / "head.json").read_text())
    (out / "head.json").write_text(json.dumps({**doc, "schema_version": 99}))
    with pytest.raises(TiermemError, match="schema version 99; this tiermem reads 1"):
        load_head(out)
    (out / "weights.safetensors").write_bytes(b"\x80\x04\x95 not safetensors, maybe a pickle")
    (out / "head.json").write_text(json.dumps(doc))
    with pytest.raises(TiermemError, match="not a readable safetensors file"):
        load_head(out)
    with pytest.raises(TiermemError, match="not a tiermem model directory"):
        load_head(tmp_path)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(TiermemError, match="not a tiermem model directory; refusing to overwrite"):
        head.save(other)
    with pytest.raises(TiermemError, match="not fitted"):
        M3SHead().predict(Xv)

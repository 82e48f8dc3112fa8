"""Metrics against scipy and by hand; the vectorised bootstrap against a plain loop; joins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from tiermem.errors import DataMismatchError, DatasetError
from tiermem.metrics import (
    bootstrap_spearman,
    evaluate,
    join_predictions,
    mae,
    mse,
    pearson,
    read_scores,
    spearman,
    spearman_ci,
)


def _pair(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.round(rng.random(n), 2)  # rounded: ties, as real memorability scores have
    return y, 0.5 * y + 0.5 * rng.random(n)


def test_point_metrics_match_scipy_and_hand_values() -> None:
    y, p = _pair()
    assert spearman(y, p) == pytest.approx(spearmanr(y, p).statistic, abs=1e-12)
    assert pearson(y, p) == pytest.approx(pearsonr(y, p).statistic, abs=1e-12)
    assert mse([0.1, 0.7, 0.4], [0.2, 0.5, 0.9]) == pytest.approx(0.1)
    assert mae([0.1, 0.7, 0.4], [0.2, 0.5, 0.9]) == pytest.approx(0.8 / 3)
    assert np.isnan(spearman([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]))  # constant prediction


def test_bootstrap_matches_a_plain_loop() -> None:
    y, p = _pair(150)
    fast = bootstrap_spearman(y, p, n_resamples=40, seed=3, chunk=40)
    idx = np.random.default_rng(3).integers(0, y.size, size=(40, y.size))
    slow = [spearmanr(y[i], p[i]).statistic for i in idx]
    np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_ci_brackets_the_estimate_and_narrows_with_n() -> None:
    y, p = _pair(200)
    lo, hi = spearman_ci(y, p, n_resamples=500)
    assert lo < spearman(y, p) < hi
    y2, p2 = _pair(2000)
    lo2, hi2 = spearman_ci(y2, p2, n_resamples=500)
    assert (hi2 - lo2) < 0.6 * (hi - lo)  # ~1/sqrt(10) of the width expected


def test_ci_of_a_random_predictor_contains_zero() -> None:
    rng = np.random.default_rng(1)
    m = evaluate(rng.random(300), rng.random(300), n_resamples=500)
    assert m.spearman_lo < 0 < m.spearman_hi
    assert m.n == 300 and set(m.to_dict()) >= {"spearman", "spearman_lo", "pearson", "mse", "mae"}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_join_predictions_aligns_on_video_id(tmp_path: Path) -> None:
    preds = _write(tmp_path / "p.csv", "video_id,score\nc,0.3\na,0.1\nb,0.2\n")
    labels = _write(tmp_path / "l.csv", "video_id,short_term\na,0.9\nb,0.8\nc,0.7\nd,0.6\n")
    pairs = join_predictions(preds, labels, "short_term")
    assert list(pairs.ids) == ["c", "a", "b"]
    np.testing.assert_allclose(pairs.y_true, [0.7, 0.9, 0.8])
    np.testing.assert_allclose(pairs.y_pred, [0.3, 0.1, 0.2])
    assert pairs.n_unpredicted == 1


def test_join_predictions_refuses_missing_labels(tmp_path: Path) -> None:
    preds = _write(tmp_path / "p.csv", "video_id,score\n" + "".join(f"v{i},0.5\n" for i in range(8)))
    labels = _write(tmp_path / "l.csv", "video_id,t\nv0,0.9\nv1,0.8\n")
    with pytest.raises(
        DataMismatchError,
        match=r"no 't' label for 6 of 8 predicted video_ids .*v2, v3, v4, v5, v6, \.\.\. \(\+1 more\)",
    ):
        join_predictions(preds, labels, "t")


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("video_id,t\na,0.1\na,0.2\n", DataMismatchError, "1 duplicate video_ids: a"),
        ("video_id,t\na,0.1\nb,\n", DataMismatchError, "row 3 .*video_id=b"),
        ("video_id,t\na,0.1\nb,high\n", DataMismatchError, "non-numeric 't'.*'high'"),
        ("video_id,other\na,0.1\n", DatasetError, "no column 't'"),
    ],
)
def test_read_scores_refuses_bad_tables(tmp_path: Path, text: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        read_scores(_write(tmp_path / "x.csv", text), "t")


def test_read_scores_keeps_ids_as_strings(tmp_path: Path) -> None:
    ids, vals = read_scores(_write(tmp_path / "x.csv", "video_id,t\n007,0.5\n10,0.25\n"), "t")
    assert list(ids) == ["007", "10"]  # not parsed as integers
    np.testing.assert_allclose(vals, [0.5, 0.25])

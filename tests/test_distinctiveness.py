"""Distinctiveness estimators on synthetic contexts with known structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from scipy.stats import gaussian_kde
from sklearn.cluster import DBSCAN
from sklearn.exceptions import NotFittedError

from tiermem.distinctiveness import (
    Distinctiveness,
    distinctiveness_report,
    get_distinctiveness,
    knee_eps,
    list_distinctiveness,
)
from tiermem.errors import DataMismatchError, TiermemError


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated Gaussian blobs (100 videos each) in 20 dims, plus their centres."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (4, 20))
    X = np.concatenate([c + rng.normal(0, 1, (100, 20)) for c in centres])
    return X, centres, np.repeat(np.arange(4), 100)


@pytest.fixture(scope="module")
def fitted_dbscan(blobs):
    X, _, _ = blobs
    est = get_distinctiveness("dbscan", source="mid", random_state=0)
    return est, est.fit_transform(X)


def _blob_context(seed=1, n=300, d=20, offset=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, d)) + offset


# -- outliers stand out ------------------------------------------------------------------------
def test_outlier_is_more_distinctive_than_inlier_for_every_continuous_method():
    X = _blob_context(offset=0.0)
    inlier, outlier = np.zeros(20), np.full(20, 0.0)
    outlier[:3] = 8.0
    Q = np.stack([inlier, outlier])

    knn = get_distinctiveness("knn", source="mid", k=10).fit(X)
    F = knn.transform(Q)
    assert knn.feature_names == ["knn_mid_nn_dist", "knn_mid_mean_dist"]
    assert F[1, 0] > 2 * F[0, 0] and F[1, 1] > 2 * F[0, 1]

    kde = get_distinctiveness("kde", source="mid").fit(X)
    F = kde.transform(Q)
    assert kde.feature_names == ["kde_mid_log_density"]
    assert F[1, 0] < F[0, 0] - 5

    # Cosine needs a non-centred space: a context of vectors near the all-ones direction.
    C = _blob_context(offset=3.0)
    cos = get_distinctiveness("cosine", source="text").fit(C)
    away = np.full(20, 3.0)
    away[::2] = -3.0
    F = cos.transform(np.stack([np.full(20, 3.0), away]))
    assert cos.feature_names == ["cosine_text_sim_to_mean", "cosine_text_mean_sim"]
    assert F[0, 0] > 0.99 and abs(F[1, 0]) < 0.05
    assert F[1, 1] < F[0, 1]

    for est in (knn, kde, cos):
        q = Q if est is not cos else np.stack([np.full(20, 3.0), away])
        s = est.score(q)
        assert s[1] > s[0]
        p = est.percentile(s)
        assert p[1] == 100.0 and p[0] < 60.0


# -- leave-one-out on the context --------------------------------------------------------------
def test_knn_leave_one_out_matches_brute_force_and_differs_from_transform():
    X = _blob_context(seed=2, n=60, d=5)
    est = get_distinctiveness("knn", k=4, n_components=5, standardize=False)
    F = est.fit_transform(X)
    Z = est.context_
    D = np.linalg.norm(Z[:, None] - Z[None], axis=2)
    np.fill_diagonal(D, np.inf)
    nearest = np.sort(D, axis=1)[:, :4]
    np.testing.assert_allclose(F[:, 0], nearest[:, 0], rtol=1e-10)
    np.testing.assert_allclose(F[:, 1], nearest.mean(axis=1), rtol=1e-10)
    # transform treats its input as new videos: each context video finds itself at distance 0.
    np.testing.assert_allclose(est.transform(X)[:, 0], 0.0, atol=1e-9)
    # PCA to all 5 dims without standardising is a rotation: distances are the raw ones.
    Dx = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(Dx, np.inf)
    np.testing.assert_allclose(F[:, 0], Dx.min(axis=1), rtol=1e-9)


def test_kde_matches_scipy_gaussian_kde_and_leave_one_out():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4)) @ rng.normal(size=(4, 4))  # correlated axes
    est = get_distinctiveness("kde", n_components=4, standardize=False, bandwidth="scott").fit(X)
    Q = rng.normal(size=(15, 4))
    ref = gaussian_kde(X.T, bw_method="scott")
    # Whitened-space density = raw-space density x sqrt(det covariance) (change of variables).
    jacobian = 0.5 * np.linalg.slogdet(np.cov(X.T))[1]
    np.testing.assert_allclose(est.transform(Q)[:, 0] - jacobian, ref.logpdf(Q.T), rtol=1e-9)

    # Leave-one-out: the density of each context video from the other n - 1.
    F = est.fit_transform(X)
    W, h = est.context_, est.bandwidth_
    d2 = ((W[:, None] - W[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    expected = logsumexp(-0.5 * d2 / h**2, axis=1) - np.log(199) - 2 * np.log(2 * np.pi * h * h)
    np.testing.assert_allclose(F[:, 0], expected, rtol=1e-10)
    assert h == pytest.approx(200 ** (-1 / 8))
    silverman = get_distinctiveness("kde", n_components=4, bandwidth="silverman").fit(X)
    assert silverman.bandwidth_ == pytest.approx((200 * 6 / 4) ** (-1 / 8))


def test_cosine_leave_one_out_excludes_the_video_from_the_means():
    X = _blob_context(seed=4, n=30, d=6, offset=2.0)
    F = get_distinctiveness("cosine").fit_transform(X)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    for i in (0, 17):
        others = np.delete(X, i, axis=0)
        m = others.mean(axis=0)
        assert F[i, 0] == pytest.approx(U[i] @ m / np.linalg.norm(m), rel=1e-12)
        assert F[i, 1] == pytest.approx(np.mean(np.delete(U, i, axis=0) @ U[i]), rel=1e-12)


# -- DBSCAN, the paper's method ----------------------------------------------------------------
def test_knee_eps_separates_a_grid_from_far_points():
    grid = np.arange(200.0)[:, None]  # spacing 1: 3-distance is 1 inside, 2 at the ends
    far = 1000.0 + 150.0 * np.arange(10.0)[:, None]
    X = np.concatenate([grid, far])
    eps = knee_eps(X, min_samples=3)
    assert 1.0 <= eps <= 2.0
    labels = DBSCAN(eps=eps, min_samples=3).fit_predict(X)
    assert len(set(labels[:200])) == 1 and labels[0] >= 0
    assert (labels[200:] == -1).all()


def test_dbscan_finds_the_blobs_and_assigns_new_videos(blobs, fitted_dbscan):
    X, centres, blob = blobs
    est, F = fitted_dbscan
    assert est.n_clusters_ == 4
    assert est.noise_share_ < 0.05
    assert est.feature_names[-1] == "dbscan_mid_noise" and len(est.feature_names) == 5
    assert F.shape == (400, 5) and (F.sum(axis=1) == 1).all()
    # Each blob is one cluster: the majority cluster of blob b is unique to b.
    majority = [np.bincount(F[blob == b].argmax(axis=1)).argmax() for b in range(4)]
    assert sorted(majority) == [0, 1, 2, 3]
    # New videos drawn from blob b go to blob b's cluster (via the MLP; no t-SNE on them).
    rng = np.random.default_rng(9)
    for b in range(4):
        new = centres[b] + rng.normal(0, 1, (20, 20))
        assert (est.transform(new).argmax(axis=1) == majority[b]).all()
    summary = est.summary()
    assert summary["n_clusters"] == 4 and summary["eps"] == est.eps_ > 0


def test_dbscan_reference_options_fixed_eps_and_noise_in_the_last_cluster(blobs, tmp_path):
    """The reference's choices: random-init t-SNE with lr 200 on whitened PCA, a fixed eps, and
    its one-hot bug (noise marked in the last cluster's column)."""
    X, _, _ = blobs
    outliers = np.random.default_rng(5).uniform(-40, 40, (12, 20))  # scattered: DBSCAN noise
    context = np.concatenate([X, outliers])
    options = dict(
        source="high",
        standardize=False,
        whiten=True,
        tsne_init="random",
        tsne_learning_rate=200.0,
        min_samples=5,
        hidden_layer_sizes=(100,),
        random_state=0,
    )
    own = get_distinctiveness("dbscan", eps=30.0, **options)  # t-SNE spreads these 412 videos over ~400 units
    bug = get_distinctiveness("dbscan", eps=30.0, noise_column="last-cluster", **options)
    F_own, F_bug = own.fit_transform(context), bug.fit_transform(context)
    assert own.eps_ == bug.eps_ == 30.0 and own.summary()["eps_from"] == "fixed"
    k = own.n_clusters_
    noise = F_own[:, -1] == 1
    assert k >= 4 and noise.any()
    assert F_own.shape == (len(context), k + 1) and F_bug.shape == (len(context), k)
    assert bug.feature_names == [f"dbscan_high_cluster_{i}" for i in range(k)]
    # Noise rows carry the last cluster's one-hot; cluster rows are unchanged.
    np.testing.assert_array_equal(F_bug[noise], np.eye(k)[[k - 1] * int(noise.sum())])
    np.testing.assert_array_equal(F_bug[~noise], F_own[~noise, :k])
    loaded = Distinctiveness.load(bug.save(tmp_path / "bug.npz"))
    np.testing.assert_array_equal(loaded.transform(outliers), bug.transform(outliers))
    with pytest.raises(TiermemError, match="noise_column must be one of own, last-cluster"):
        get_distinctiveness("dbscan", noise_column="first")


# -- state -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["knn", "kde", "cosine", "dbscan"])
def test_save_load_round_trip_is_identical(method, tmp_path, blobs, fitted_dbscan):
    X, centres, _ = blobs
    if method == "dbscan":
        est = fitted_dbscan[0]
    else:
        est = get_distinctiveness(method, source="high").fit(X)
    path = est.save(tmp_path / f"{method}.npz")
    with np.load(path, allow_pickle=False) as npz:  # plain arrays only
        assert "__json__" in npz.files
    loaded = Distinctiveness.load(path)
    assert type(loaded) is type(est) and loaded.get_params() == est.get_params()
    rng = np.random.default_rng(11)
    Q = np.concatenate([centres[:2] + rng.normal(0, 1, (2, 20)), rng.normal(0, 20, (5, 20))])
    np.testing.assert_array_equal(loaded.transform(Q), est.transform(Q))
    np.testing.assert_array_equal(loaded.score(Q), est.score(Q))
    np.testing.assert_array_equal(loaded.percentile(est.score(Q)), est.percentile(est.score(Q)))
    assert loaded.feature_names == est.feature_names
    again = Distinctiveness.from_state(est.state_dict())
    np.testing.assert_array_equal(again.transform(Q), est.transform(Q))


def test_load_refuses_other_schema_and_non_files(tmp_path):
    est = get_distinctiveness("cosine").fit(_blob_context(offset=1.0))
    state = est.state_dict()
    state["schema_version"] = 99
    with pytest.raises(TiermemError, match="schema version 99"):
        Distinctiveness.from_state(state)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TiermemError, match="bad.npz"):
        Distinctiveness.load(bad)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["knn", "kde", "cosine"])
def test_dimension_mismatch_names_expected_and_got(method):
    est = get_distinctiveness(method, source="mid").fit(_blob_context(offset=1.0))
    with pytest.raises(DataMismatchError, match=r"expected 20 features.*got 19"):
        est.transform(np.zeros((3, 19)))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(NotFittedError):
        get_distinctiveness("knn").transform(np.zeros((1, 3)))
    X = _blob_context()
    X[5, 2] = np.nan
    with pytest.raises(DataMismatchError, match="row 5"):
        get_distinctiveness("knn").fit(X)
    with pytest.raises(DataMismatchError, match="at least 11 videos"):
        get_distinctiveness("knn", k=10).fit(np.zeros((10, 3)))
    with pytest.raises(TiermemError, match="unknown distinctiveness method 'lof'"):
        get_distinctiveness("lof")
    assert list_distinctiveness() == ["cosine", "dbscan", "kde", "knn"]


# -- feature tables ----------------------------------------------------------------------------
def test_report_scores_new_and_context_videos(tmp_path):
    X = _blob_context(seed=5, n=100, d=8)
    cols = [f"mid_{i}" for i in range(8)]
    context = pd.DataFrame(X, columns=cols)
    context.insert(0, "video_id", [f"v{i}" for i in range(100)])
    context["path"] = "x.mp4"  # store bookkeeping column: not a feature
    context.to_parquet(tmp_path / "context.parquet")
    query = pd.concat(
        [
            context.iloc[[3]].drop(columns="path"),
            pd.DataFrame(np.full((1, 8), 9.0), columns=cols).assign(video_id="outlier"),
        ],
        ignore_index=True,
    )
    query[cols[::-1] + ["video_id"]].to_csv(tmp_path / "query.csv", index=False)  # other order
    rep = distinctiveness_report(
        tmp_path / "context.parquet", tmp_path / "query.csv", method="knn", source="mid", k=5
    )
    t = rep.table
    assert list(t["video_id"]) == ["v3", "outlier"]
    assert list(t["in_context"]) == [True, False]
    assert rep.estimator.n_features_in_ == 8
    # The context video gets its leave-one-out distance (not 0 from matching itself).
    assert t.loc[0, "knn_mid_nn_dist"] > 0
    assert t.loc[1, "percentile"] == 100.0 and t.loc[1, "distinctiveness"] > t.loc[0, "distinctiveness"]
    assert rep.to_json()["summary"]["n_context"] == 100

    query.drop(columns="mid_7").to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataMismatchError, match="missing 1 of the context's 8 feature columns"):
        distinctiveness_report(tmp_path / "context.parquet", tmp_path / "short.csv")


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_distinct_on_tables_matches_the_library(tmp_path):
    import json

    from typer.testing import CliRunner

    from tiermem.cli import app

    X = _blob_context(seed=6, n=80, d=6)
    cols = [f"high_{i}" for i in range(6)]
    ctx = pd.DataFrame(X, columns=cols)
    ctx.insert(0, "video_id", [f"c{i}" for i in range(80)])
    ctx.to_parquet(tmp_path / "ctx.parquet")
    qry = pd.DataFrame(np.vstack([X[:2] + 0.1, np.full((1, 6), 7.0)]), columns=cols)
    qry.insert(0, "video_id", ["q0", "q1", "far"])
    qry.to_csv(tmp_path / "q.csv", index=False)
    res = CliRunner().invoke(
        app,
        [
            "distinct",
            "--context",
            str(tmp_path / "ctx.parquet"),
            str(tmp_path / "q.csv"),
            "--method",
            "kde",
            "--source",
            "high",
            "--components",
            "4",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    lib = distinctiveness_report(
        tmp_path / "ctx.parquet", tmp_path / "q.csv", method="kde", source="high", n_components=4
    ).table
    assert [v["video_id"] for v in doc["videos"]] == ["q0", "q1", "far"]
    np.testing.assert_allclose(
        [v["kde_high_log_density"] for v in doc["videos"]], lib["kde_high_log_density"]
    )
    assert doc["videos"][2]["percentile"] == 100.0
    assert doc["summary"]["method"] == "kde" and doc["failed"] == []

    res = CliRunner().invoke(app, ["distinct", "--context", str(tmp_path / "ctx.parquet"), "--method", "lof"])
    assert res.exit_code == 1 and "unknown distinctiveness method 'lof'" in res.output


def test_cli_distinct_extracts_videos_and_reports_bad_files(tmp_path, sample_clip_paths):
    import json
    import shutil

    from typer.testing import CliRunner

    from tiermem.cli import app

    context = tmp_path / "context"
    context.mkdir()
    for p in sample_clip_paths[1:]:
        shutil.copy(p, context / p.name)
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    query = sample_clip_paths[0]
    res = CliRunner().invoke(
        app,
        [
            "distinct",
            "--context",
            str(context),
            str(query),
            str(bad),
            "--source",
            "low",
            "--method",
            "knn",
            "--k",
            "2",
            "--store",
            str(tmp_path / "store"),
            "--json",
        ],
    )
    assert res.exit_code == 1  # the broken file fails; the good one is still scored
    doc = json.loads(res.stdout)
    assert [v["video_id"] for v in doc["videos"]] == [query.stem]
    assert doc["videos"][0]["knn_low_nn_dist"] > 0 and not doc["videos"][0]["in_context"]
    assert doc["summary"]["n_context"] == len(sample_clip_paths) - 1
    assert [f["path"] for f in doc["failed"]] == [str(bad)]
    assert (tmp_path / "store" / "low.parquet").is_file()

"""Regression tests of the reliability battery: each command once printed a traceback, ran with an
option it ignored, or misled; each now gives one clear line and exit code 1, or does what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import one_error, run


def test_predict_text_checks_its_out_before_scoring(tmp_path: Path) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    assert "is a directory" in one_error(run("predict-text", "a dog runs", "--out", folder))
    assert "cannot be written" in one_error(run("predict-text", "a dog runs", "--out", "/proc/p.csv"))


def test_report_checks_its_out_before_reading_the_model(fitted) -> None:
    _, model, _ = fitted
    assert "/proc/x/r.html: cannot be written" in one_error(
        run("report", "--model", model, "--out", "/proc/x/r.html")
    )


@pytest.mark.parametrize("option", ["--stride 0", "--stride -1", "--window 0", "--window -3", "--window nan"])
def test_window_and_stride_must_be_positive_seconds(option: str, sample_clip_paths: list[Path]) -> None:
    name, value = option.split()
    line = one_error(run("predict", sample_clip_paths[0], name, value))
    assert f"{name} must be > 0" in line


def test_weights_for_an_unknown_tier_are_refused(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    line = one_error(
        run("extract", sample_clip_paths[0], "--weights", f"bogus={weights}", "--out", tmp_path / "f")
    )
    assert "no tier 'bogus'" in line and not (tmp_path / "f").exists()


def test_frame_options_are_refused_in_table_mode(tmp_path: Path) -> None:
    line = one_error(
        run(
            "predict",
            "--block",
            f"a={tmp_path / 'a.parquet'}",
            "--model",
            tmp_path,
            "--out",
            tmp_path / "p.csv",
            "--timeline",
            "--window",
            "3",
        )
    )
    assert "--timeline, --window: apply to videos, not to feature tables" in line


@pytest.mark.parametrize(
    "address, says",
    [
        ("not an address", "expected auto, HOST:PORT or ray://HOST:PORT"),
        ("127.0.0.1:1", "no Ray cluster answers at 127.0.0.1:1"),
    ],
)
def test_a_bad_ray_address_is_one_line(
    address: str, says: str, sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    line = one_error(
        run(
            "extract",
            sample_clip_paths[0],
            "--engine",
            "ray",
            "--ray-address",
            address,
            "--out",
            tmp_path / "f",
        )
    )
    assert says in line


def test_cuda_asked_for_without_a_gpu_is_refused_on_every_path(fitted, sample_clip_paths: list[Path]) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: --device cuda is honoured")
    _, model, _ = fitted
    for extra in ([], ["--timeline", "--window", "1"], ["--model", "zero-shot"]):
        args = ["predict", sample_clip_paths[1], "--device", "cuda", *(extra or ["--model", model])]
        if extra and extra[0] == "--timeline":
            args += ["--model", model]
        assert "--device cuda: torch sees no CUDA GPU" in one_error(run(*args))


def test_serve_refuses_what_cannot_start_before_its_banner(tmp_path: Path) -> None:
    import socket

    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file, not a folder" in one_error(run("serve", "--data", afile))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--data", tmp_path / "d", "--port", port)
        assert (
            f"cannot listen on 127.0.0.1:{port}" in one_error(result)
            and "tiermem serve:" not in result.output
        )


def test_a_long_description_is_read_whole_in_chunks() -> None:
    """The encoder reads 256 tokens: a text past that is scored as the mean of its chunks, so
    what comes after the first 1.5 kB changes the score (it was ignored)."""
    import tiermem
    from tiermem.models.text import text_chunks

    model = tiermem.load("memento10k-captions")
    words = "a man walks his dog along a grey beach at night while red cars pass on the city road".split()
    long = " ".join(words[i % len(words)] for i in range(1200))
    table = model.predict_text(
        [long[:1500], long, long[:3000] + " a woman talks to the camera in her kitchen"]
    )
    assert list(table["chunks"]) == [2, 5, 3]  # 1200 words of one token each: 254 tokens a chunk
    assert table["score"].nunique() == 3
    pieces = text_chunks([long], model.encoder_window())[0]
    assert " ".join(pieces).split() == long.split()  # every word is read, in order, once
    whole = model.score_captions([pieces])[0]
    assert table["score"].iloc[1] == pytest.approx(whole)


def test_too_little_text_is_flagged_not_scored(tmp_path: Path) -> None:
    import json

    assert "too little text to score" in one_error(run("predict-text", "🎉🔥🐶"))
    result = run("predict-text", "a dog runs on the beach", "🎉🔥🐶", "--json")
    rows = json.loads(result.output)
    assert result.exit_code == 0 and rows[0]["score"] > 0 and rows[1]["score"] is None
    assert rows[1]["note"].startswith("too little text") and rows[0]["chunks"] == 1


TRECVID = Path(__file__).resolve().parents[2] / "shared" / "realbench" / "trecvid2020"


@pytest.fixture()
def trecvid() -> dict[str, Path]:
    if not (TRECVID / "labels_train.csv").is_file():
        pytest.skip(f"real TRECVid labels not found at {TRECVID} (../shared/realbench)")
    return {"labels": TRECVID / "labels_train.csv", "c3d": TRECVID / "features_c3d_rn18_sports1m.parquet"}


def test_train_refuses_a_folder_or_the_id_column_as_labels(trecvid: dict[str, Path], tmp_path: Path) -> None:
    block = f"c3d={trecvid['c3d']}"
    args = ["train", "--block", block, "--head", "ridge", "--out", tmp_path / "m"]
    assert "is a directory, not a CSV file" in one_error(
        run(*args, "--labels", tmp_path, "--target", "short_term")
    )
    assert "is the id column" in one_error(run(*args, "--labels", trecvid["labels"], "--target", "video_id"))
    assert not (tmp_path / "m").exists()


def test_a_label_too_large_to_learn_from_is_refused_naming_its_row(
    trecvid: dict[str, Path], tmp_path: Path
) -> None:
    import pandas as pd

    labels = pd.read_csv(trecvid["labels"], dtype={"video_id": str})
    labels.loc[5, "short_term"] = 1e308
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    line = one_error(
        run(
            "train",
            "--labels",
            path,
            "--target",
            "short_term",
            "--block",
            f"c3d={trecvid['c3d']}",
            "--head",
            "ridge",
            "--out",
            tmp_path / "m",
        )
    )
    assert "row 7" in line and "out of range" in line and not (tmp_path / "m").exists()


def test_a_preset_prints_only_the_settings_that_applied(trecvid: dict[str, Path], tmp_path: Path) -> None:
    common = ["--labels", trecvid["labels"], "--target", "short_term", "--block", f"c3d={trecvid['c3d']}"]
    ridge = run("train", *common, "--head", "ridge", "--preset", "m3s-reference", "--out", tmp_path / "r")
    assert ridge.exit_code == 0 and "preset m3s" not in ridge.output and "None" not in ridge.output
    m3s = run(
        "train",
        *common,
        "--head",
        "m3s",
        "--epochs",
        "2",
        "--preset",
        "m3s-reference",
        "--out",
        tmp_path / "m",
    )
    assert m3s.exit_code == 0 and "preset m3s-reference-memento10k: mse loss, Adam lr 0.001" in m3s.output


def test_a_bootstrap_needs_enough_resamples(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("video_id,score\na,0.1\nb,0.5\nc,0.9\n")
    line = one_error(
        run(
            "evaluate",
            "--predictions",
            tmp_path / "p.csv",
            "--labels",
            tmp_path / "p.csv",
            "--target",
            "score",
            "--resamples",
            "1",
        )
    )
    assert "--resamples must be 0 (no CI) or from 100" in line


def test_fit_on_a_csv_of_scores_in_its_own_units(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    """A user's CSV scored 0-100 trains as `train` does: scaled to [0, 1] and back (it was refused)."""
    rows = [f"{p.stem},{p},{score}" for p, score in zip(sample_clip_paths, (35, 80, 62, 91, 48, 70))]
    (tmp_path / "labels.csv").write_text("video_id,path,score\n" + "\n".join(rows) + "\n")
    result = run(
        "fit", "--dataset", "csv", "--root", tmp_path / "labels.csv", "--target", "score", "--tiers", "low",
        "--head", "ridge", "--frames", "9", "--size", "96", "--val-fraction", "0.5", "--no-ablate",
        "--out", tmp_path / "m",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import tiermem

    model = tiermem.load(tmp_path / "m")
    assert model.card()["trained_on"]["videos"] == 6  # validated on 3, then refitted on all 6
    assert not model.head_.target_scaling_.is_identity  # learnt scaled to [0, 1] ...
    scores = model.predict(sample_clip_paths[:2]).table["score"]
    assert ((scores >= 35) & (scores <= 91)).all()  # ... and predicts in the file's units


def test_train_refits_on_every_label_after_validating(trecvid: dict[str, Path], tmp_path: Path) -> None:
    """The saved head learns from every labelled video once the validation has measured the
    configuration (GridSearchCV's refit); --no-refit keeps the head the validation measured."""
    import json

    from tiermem.model.base import load_head

    common = [
        "--labels",
        trecvid["labels"],
        "--target",
        "short_term",
        "--block",
        f"c3d={trecvid['c3d']}",
        "--json",
    ]
    refit = run("train", *common, "--out", tmp_path / "refit")
    kept = run("train", *common, "--no-refit", "--out", tmp_path / "kept")
    a, b = json.loads(refit.output), json.loads(kept.output)
    assert a["validation"] == b["validation"]  # the same split measured the same configuration
    assert a["refitted_on"] == a["n_train"] + a["n_val"] == 442 and b["refitted_on"] is None
    final, measured = load_head(tmp_path / "refit"), load_head(tmp_path / "kept")
    assert final.provenance_ == {"trained_on": 442, "validated_on": a["n_val"], "refitted": True}
    assert measured.provenance_ == {"trained_on": a["n_train"], "validated_on": a["n_val"], "refitted": False}
    assert final.name == measured.name == "auto" and final.chosen_ == measured.chosen_  # the choice, refitted
    assert final.cv_spearman_ == measured.cv_spearman_  # with the evidence it was made on

"""The text memorability models shipped in the package: loading, scoring, cards, CLI, the wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REALBENCH
from typer.testing import CliRunner

import tiermem
from tiermem.cli import app
from tiermem.errors import TiermemError
from tiermem.models.caption_kernel import CaptionKernelRidge, mean_by_owner, rbf
from tiermem.models.text import TextModel

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("memento10k-captions", "videomem-titles")
runner = CliRunner()
VIVID = "a man juggles flaming torches on a beach at night while a crowd cheers"
DULL = "an empty grey office corridor"


@pytest.fixture(scope="module")
def memento() -> TextModel:
    return tiermem.load("memento10k-captions")


def test_shipped_models_are_listed_and_load_from_the_package(memento: TextModel) -> None:
    assert set(SHIPPED) <= set(tiermem.list_models())
    for name in SHIPPED:
        model = tiermem.load(name)
        assert isinstance(model, TextModel) and model.name == name
        # Read from the installed package, not from ../shared: the files sit beside the module.
        folder = Path(tiermem.models.__file__).parent / "shipped" / name
        assert (folder / "model.json").is_file() and (folder / "weights.safetensors").is_file()
        # 4000 float16 Nyström centres of 384 dimensions (3 MB) and a small MLP: a few MB each.
        assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 5_000_000
    with pytest.raises(TiermemError, match="takes no options"):
        tiermem.load("memento10k-captions", precision="bf16")


def test_predict_text_scores_and_percentiles(memento: TextModel) -> None:
    table = memento.predict_text([VIVID, DULL, VIVID])
    assert list(table.columns) == ["text", "score", "percentile", "chunks", "note"]
    assert list(table["chunks"]) == [1, 1, 1] and not table["note"].str.len().any()
    assert table["score"].between(0, 1).all() and table["percentile"].between(0, 100).all()
    assert table["score"][0] == pytest.approx(table["score"][2], abs=1e-6)  # the same text, the same score
    assert table["score"][0] != table["score"][1]
    # A single string is one description.
    assert memento.predict_text(DULL)["score"][0] == pytest.approx(
        table["score"][1], abs=1e-6
    )  # batches pad differently


def test_a_videos_score_is_the_mean_of_its_captions_scores(memento: TextModel) -> None:
    captions = [
        VIVID,
        DULL,
        "two dogs run across a snowy field",
        "a woman sings in a kitchen",
        "rain on a window",
    ]
    alone = memento.predict_text(captions)["score"].to_numpy()
    together = memento.score_captions([captions])[0]
    assert together == pytest.approx(alone.mean(), abs=1e-6)


def test_cards_state_data_terms_validation_and_what_is_scored() -> None:
    from tiermem.card import model_card

    for name in SHIPPED:
        card = model_card(tiermem.load(name))
        assert card["kind"] == "text" and card["name"] == name
        assert "description's memorability" in card["statement"] and "not a video" in card["statement"]
        assert "terms" in card["terms"] and card["trained_on"]["videos"] >= 6000
        lo, hi = card["validation"]["spearman_95ci"]
        assert 0.3 < lo < card["validation"]["spearman"] < hi < 0.8
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    cards = {c["name"]: c for c in json.loads(result.output)}
    assert set(cards) == set(tiermem.list_models()) and cards["zero-shot"]["kind"] == "zero-shot"


def test_cli_predict_text(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict-text", VIVID, DULL, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    direct = tiermem.load("memento10k-captions").predict_text([VIVID, DULL])
    assert [r["text"] for r in rows] == [VIVID, DULL]
    np.testing.assert_allclose([r["score"] for r in rows], direct["score"], atol=1e-6)
    lines = tmp_path / "lines.txt"
    lines.write_text(f"{DULL}\n\n{VIVID}\n")
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["predict-text", "--file", str(lines), "--model", "videomem-titles", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["text"].tolist() == [DULL, VIVID]
    for args, message in (
        (["predict-text"], "no description to score"),
        (["predict-text", "x", "--model", "zero-shot"], "zero-shot: not a text model"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output


def test_cli_predict_videos_by_their_captions(sample_clip_paths: list[Path], tmp_path: Path) -> None:
    clips = sample_clip_paths[1:4]
    caps = pd.DataFrame(
        {
            "video_id": [p.stem for p in clips[:2]],
            "description_0": [VIVID, DULL],
            "description_1": ["cyclists race down a street", "people ride bikes in a city"],
        }
    )
    caps.to_csv(tmp_path / "caps.csv", index=False)
    out = tmp_path / "pred.csv"
    result = runner.invoke(
        app,
        [
            "predict",
            *map(str, clips),
            "--model",
            "memento10k-captions",
            "--captions",
            str(tmp_path / "caps.csv"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1  # the third clip has no caption: reported, the others scored
    assert f"{clips[2]}: no caption for this video" in result.output
    pred = pd.read_csv(out)
    model = tiermem.load("memento10k-captions")
    expected = model.score_captions(
        [[VIVID, "cyclists race down a street"], [DULL, "people ride bikes in a city"]]
    )
    np.testing.assert_allclose(pred["score"], expected, atol=1e-6)
    assert pred["video_id"].tolist() == [p.stem for p in clips[:2]]
    # what only frames allow is refused in one line, not silently ignored
    refused = runner.invoke(
        app,
        [
            "predict",
            str(clips[0]),
            "--model",
            "memento10k-captions",
            "--captions",
            str(tmp_path / "caps.csv"),
            "--timeline",
            "--stride",
            "1",
        ],
    )
    assert refused.exit_code != 0
    assert "memento10k-captions scores captions, not frames: timeline, stride do not apply" in refused.output
    with pytest.raises(TiermemError, match="cache does not apply"):
        model.predict(clips[:1], captions={clips[0].stem: [VIVID]}, cache=tmp_path / "features")


def test_kernel_model_is_exactly_linear_in_each_captions_feature_map() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    owner = np.repeat(np.arange(50), 4)
    y = 0.5 + 0.1 * np.tanh(3 * emb[::4, 0])
    model = CaptionKernelRidge(landmarks=60, gamma=1.0).fit(emb, owner, y)
    per_video = mean_by_owner(model.predict_captions(emb)[:, None], owner, 50)[:, 0]
    assert np.corrcoef(per_video, y)[0, 1] > 0.9  # it learns the signal
    # Scoring is k(c, L) v + b with the saved (float16 landmarks, float32 coefficients) arrays.
    direct = rbf(emb, model.landmarks_.astype(np.float64), 1.0) @ model.coef_ + model.intercept_
    np.testing.assert_allclose(model.predict_captions(emb), direct, atol=1e-12)
    again = CaptionKernelRidge(landmarks=60, gamma=1.0).load_state(model.state(), "test")
    np.testing.assert_array_equal(again.predict_captions(emb), model.predict_captions(emb))


def test_a_damaged_text_model_is_refused_in_one_line(tmp_path: Path) -> None:
    import shutil

    copy = Path(
        shutil.copytree(Path(tiermem.models.__file__).parent / "shipped" / "videomem-titles", tmp_path / "m")
    )
    (copy / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(TiermemError, match=f"{copy}: damaged text model"):
        TextModel.load(copy)


@pytest.mark.skipif(
    not (REALBENCH / "videomem" / "titles.csv").is_file(),
    reason=f"real VideoMem titles not found at {REALBENCH}",
)
def test_fit_on_real_titles_is_reproducible_and_ranks_held_out_videos(tmp_path: Path) -> None:
    from tiermem.datasets import read_realbench
    from tiermem.metrics import spearman

    lab = read_realbench(REALBENCH / "videomem").labelled("short_term")
    caps, y = lab.captions[:1500], lab.target("short_term")[:1500]

    def fit() -> TextModel:
        return TextModel("t", CaptionKernelRidge(landmarks=300, gamma=0.5), None).fit(caps[:1200], y[:1200])

    a, b = fit().save(tmp_path / "a"), fit().save(tmp_path / "b")
    assert (a / "weights.safetensors").read_bytes() == (b / "weights.safetensors").read_bytes()
    assert spearman(y[1200:], TextModel.load(a).score_captions(caps[1200:])) > 0.25


def test_the_wheel_carries_the_shipped_models(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("tiermem-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(
        p.relative_to(REPO / "src").as_posix()
        for p in (REPO / "src" / "tiermem" / "models" / "shipped").rglob("*")
        if p.is_file()
    )
    assert shipped and set(shipped) <= names
    assert {f"tiermem/models/shipped/{n}/model.json" for n in SHIPPED} <= names


def test_the_demo_scores_each_sample_videos_description(memento: TextModel) -> None:
    from rich.console import Console

    from tiermem.cli.walkthrough import SAMPLE_DESCRIPTIONS, describe_samples

    console = Console(record=True, width=120)
    scored = describe_samples(console)
    text = console.export_text()
    expected = memento.predict_text(list(SAMPLE_DESCRIPTIONS.values()))
    np.testing.assert_allclose(scored["score"], expected["score"], atol=1e-6)
    for video, score in zip(SAMPLE_DESCRIPTIONS, scored["score"]):
        assert video in text and f"{score:.3f}" in text

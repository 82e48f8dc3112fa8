"""Every model `tiermem.load` returns follows one protocol, and refuses in one line what it
cannot honour."""

from __future__ import annotations

import pytest

import tiermem
from tiermem.errors import TiermemError
from tiermem.models.protocol import Explainable, FrameModel, Model


def test_every_kind_of_model_follows_the_protocol(fitted) -> None:
    pipe, model_dir, _ = fitted
    frame_models = [tiermem.load(model_dir), tiermem.load("zero-shot"), pipe]
    for model in frame_models:
        assert isinstance(model, FrameModel) and isinstance(model, Model)
        assert model.card()["kind"] in ("fitted pipeline", "zero-shot")
    assert isinstance(frame_models[0], Explainable) and not isinstance(frame_models[1], Explainable)
    text = tiermem.load("memento10k-captions")
    assert isinstance(text, Model) and not isinstance(text, FrameModel)
    assert text.card()["kind"] == "text"


def test_captions_are_refused_by_models_that_do_not_read_them(fitted, sample_clip_paths) -> None:
    pipe, _, _ = fitted
    assert "text" not in pipe.config.tiers
    captions = {sample_clip_paths[0].stem: ["a dog runs"]}
    for model in (pipe, tiermem.load("zero-shot")):
        with pytest.raises(TiermemError, match="captions do not apply") as caught:
            model.predict(sample_clip_paths[:1], captions=captions)
        assert "\n" not in str(caught.value)


def test_load_predict_explain(fitted, sample_clip_paths) -> None:
    """Three lines: a saved model explains each video's score block by block, exactly."""
    _, model_dir, _ = fitted
    model = tiermem.load(model_dir)
    videos = sample_clip_paths[1:4]
    why = model.explain(videos)
    assert list(why.columns) == ["video_id", "block", "contribution", "score", "base_score"]
    assert len(why) == 3 * len(model.layout_) and set(why["block"]) == {"low", "mid", "distinct"}
    for _, rows in why.groupby("video_id"):
        assert abs(rows["contribution"].sum() - (rows["score"].iloc[0] - rows["base_score"].iloc[0])) < 1e-6
        sizes = rows["contribution"].abs().to_numpy()
        assert (sizes[:-1] >= sizes[1:]).all()  # largest first
    scores = model.predict(videos).table.set_index("video_id")["score"]
    assert why.groupby("video_id")["score"].first().to_dict() == scores.to_dict()


def test_a_zero_shot_reference_gives_a_single_video_its_percentile(sample_clip_paths, tmp_path) -> None:
    """Zero-shot has no training norm: a reference set (a predictions CSV of the same model) gives
    one, so a single video gets a percentile, and the card names it."""
    from typer.testing import CliRunner

    from tiermem.cli import app

    reference = tmp_path / "reference.csv"
    result = CliRunner().invoke(app, ["predict", *map(str, sample_clip_paths[1:5]), "--out", str(reference)])
    assert result.exit_code == 0, result.output
    alone = tiermem.load("zero-shot").predict(sample_clip_paths[0])
    assert alone.table["percentile"].isna().all()  # no norm: no rank for one video
    model = tiermem.load("zero-shot", reference=reference)
    scored = model.predict(sample_clip_paths[0]).table
    norm = model.reference_scores
    expected = (
        100 * ((norm < scored["score"][0]).sum() + 0.5 * (norm == scored["score"][0]).sum()) / len(norm)
    )
    assert len(norm) == 4 and scored["percentile"][0] == pytest.approx(expected)
    assert "against the 4 videos of" in model.card()["statement"]
    bad = tmp_path / "bad.csv"
    bad.write_text("video_id,score\na,0.5\n")
    with pytest.raises(TiermemError, match="at least 2") as caught:
        tiermem.load("zero-shot", reference=bad)
    assert "\n" not in str(caught.value)

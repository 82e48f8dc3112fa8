"""Every model `tiermem.load` returns follows one protocol, and refuses in one line what it
cannot honour."""

from __future__ import annotations

import pytest

import tiermem
from tiermem.errors import TiermemError
from tiermem.models.protocol import FrameModel, Model


def test_every_kind_of_model_follows_the_protocol(fitted) -> None:
    pipe, model_dir, _ = fitted
    frame_models = [tiermem.load(model_dir), tiermem.load("zero-shot"), pipe]
    for model in frame_models:
        assert isinstance(model, FrameModel) and isinstance(model, Model)
        assert model.card()["kind"] in ("fitted pipeline", "zero-shot")
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

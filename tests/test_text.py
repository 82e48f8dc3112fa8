"""Text tier on the real offline MiniLM model: caption semantics, shapes, cache, store table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REALBENCH

from tiermem.blocks import load_block
from tiermem.errors import DataMismatchError, MissingWeightsError
from tiermem.tiers import get_tier
from tiermem.tiers.text import DEFAULT_DIM, CaptionCache, TextTier, embed_captions_table, text_key
from tiermem.video.clip import Clip, VideoMeta

MEMENTO_CAPTIONS = REALBENCH / "memento10k" / "captions.csv"


@pytest.fixture(scope="module")
def tier() -> TextTier:
    return TextTier(threads=1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.realbench
@pytest.mark.skipif(
    not MEMENTO_CAPTIONS.is_file(), reason=f"{MEMENTO_CAPTIONS} (real Memento10k captions) is absent"
)
def test_captions_of_the_same_video_are_closer_than_captions_of_others(tier):
    """Real human captions: caption 0 vs caption 1 of one video, against caption 1 of the others.

    On 40 videos the same-video similarity must beat the mean other-video similarity for
    (nearly) every video; a tier that ignored the text would score ~50%.
    """
    df = pd.read_csv(MEMENTO_CAPTIONS, nrows=40)
    first = tier.embed_captions(df["description_0"].tolist())
    second = tier.embed_captions(df["description_1"].tolist())
    sims = first @ second.T  # unit vectors: cosine similarity
    same = np.diag(sims)
    others = (sims.sum(axis=1) - same) / (len(df) - 1)
    assert (same > others).mean() >= 0.95
    assert same.mean() > others.mean() + 0.3
    # The nearest of the 40 second captions is the same video's for most first captions.
    assert (sims.argmax(axis=1) == np.arange(len(df))).mean() >= 0.7


def test_video_vector_is_mean_of_unit_caption_vectors(tier):
    caps = ["A dog runs along the beach.", "A puppy is running on the sand by the sea."]
    v = tier.transform_texts([caps, ["A man is cooking pasta in a kitchen."], "A dog on a beach."])
    assert v.shape == (3, DEFAULT_DIM) and v.dtype == np.float32
    single = tier.embed_captions(caps)
    np.testing.assert_allclose(np.linalg.norm(single, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(v[0], single.mean(axis=0), atol=1e-6)
    # Two captions that differ: the mean is shorter than a unit vector; one caption: unit.
    assert 0.5 < np.linalg.norm(v[0]) < 0.99 and abs(np.linalg.norm(v[1]) - 1) < 1e-5
    assert cosine(v[0], v[2]) > cosine(v[1], v[2]) + 0.3
    assert tier.feature_names[:2] == ["text_0", "text_1"] and len(tier.feature_names) == DEFAULT_DIM


def test_clip_contract_reads_extra_captions(tier):
    meta = VideoMeta("clip.mp4", 3.0, 30.0, 64, 64, 90, "h264", 0, 0, False)
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    clip = Clip(frames, np.zeros(1), meta, extra={"captions": ["A red car drives fast on a highway."]})
    out = tier.transform_batch([clip, clip])
    assert out.values.shape == (2, DEFAULT_DIM) and out.facts[0] == {"n_captions": 1}
    np.testing.assert_allclose(tier.transform(clip), out.values[0], atol=1e-6)
    with pytest.raises(DataMismatchError, match=r"clip\.mp4: no captions"):
        tier.transform(Clip(frames, np.zeros(1), meta))


def test_bad_caption_inputs(tier):
    with pytest.raises(DataMismatchError, match=r"video 'v2': no caption to embed"):
        tier.transform_texts([["ok"], ["  "]], ids=["v1", "v2"])
    with pytest.raises(DataMismatchError, match=r"video #0: caption None is not a string"):
        tier.transform_texts([["ok", None]])
    with pytest.raises(MissingWeightsError, match="never downloaded"):
        TextTier("sentence-transformers/all-mpnet-base-v2").transform_texts([["x"]])


def test_cache_hit_returns_same_vectors_without_the_model(tmp_path, monkeypatch):
    texts = ["A woman sings in a white room.", "Two kids play football in a park."]
    first = TextTier(cache_dir=tmp_path, threads=1).embed_captions(texts)
    cache = CaptionCache(tmp_path, TextTier().model_identity)
    assert len(cache) == 2 and cache.path.is_file()
    np.testing.assert_array_equal(cache.get(text_key(texts[1])), first[1])

    # A second tier must answer from the cache: make any model call fail.
    def no_model(*args, **kwargs):
        raise AssertionError("the model was called on cached captions")

    monkeypatch.setattr("tiermem.tiers.text.load_text_model", no_model)
    again = TextTier(cache_dir=tmp_path).embed_captions(texts[::-1])
    np.testing.assert_array_equal(again, first[::-1])


def test_cache_refuses_another_models_file(tmp_path):
    c = CaptionCache(tmp_path, "model-a@1")
    c.put(["k"], np.ones((1, 3)))
    c.save()
    c.path.rename(tmp_path / "text-model-b_1.npz")
    with pytest.raises(DataMismatchError, match="holds embeddings of 'model-a@1'"):
        CaptionCache(tmp_path, "model-b@1")


def test_embed_captions_table_writes_a_store_table_that_loads_as_a_block(tmp_path):
    csv = tmp_path / "captions.csv"
    csv.write_text(
        "video_id,description_0,description_1\n"
        "17,A girl looks away from the camera.,A girl with brown hair looks away.\n"
        "3628,A woman sings under a ceiling fan.,A woman sings to the camera.\n"
    )
    path = embed_captions_table(csv, tmp_path / "store", cache_dir=tmp_path / "cache", threads=1)
    assert path == tmp_path / "store" / "text.parquet"
    block = load_block(path, "captions")
    assert list(block.ids) == ["17", "3628"] and block.dim == DEFAULT_DIM
    expected = TextTier(cache_dir=tmp_path / "cache").transform_texts(
        [["A girl looks away from the camera.", "A girl with brown hair looks away."]]
    )
    np.testing.assert_allclose(block.values[0], expected[0], atol=1e-6)
    assert get_tier("text").config_hash() == TextTier().config_hash()


def test_cli_extract_text_tier_from_a_captions_csv(tmp_path):
    from typer.testing import CliRunner

    from tiermem.cli import app

    csv = tmp_path / "titles.csv"
    csv.write_text(
        "video_id,title\nvideo10,owl in tree close up\nvideo100,cute black and white cats in cage\n"
    )
    runner = CliRunner()
    ok = runner.invoke(
        app, ["extract", "--tiers", "text", "--captions", str(csv), "--out", str(tmp_path / "f")]
    )
    assert ok.exit_code == 0, ok.output
    block = load_block(tmp_path / "f" / "text.parquet", "titles")
    assert list(block.ids) == ["video10", "video100"] and block.values.shape == (2, DEFAULT_DIM)
    missing = runner.invoke(app, ["extract", "--tiers", "text", "--out", str(tmp_path / "g")])
    assert missing.exit_code == 1 and "needs --captions" in missing.output
    bad = tmp_path / "bad.csv"
    bad.write_text("video_id,score\nv1,0.5\n")
    refused = runner.invoke(
        app, ["extract", "--tiers", "text", "--captions", str(bad), "--out", str(tmp_path / "h")]
    )
    assert refused.exit_code == 1 and "no caption column" in refused.output
    assert not (tmp_path / "h" / "text.parquet").exists()


def test_cli_extract_text_tier_with_a_local_encoder(tmp_path):
    """--text-model takes any local sentence-transformers directory (here the packaged encoder's
    own folder, named by path): the rows equal the default's, the cache key names the directory."""
    from cli_runs import one_error, run

    from tiermem.tiers.text import DEFAULT_MODEL, resolve_text_model

    csv = tmp_path / "titles.csv"
    csv.write_text("video_id,title\nvideo10,owl in tree close up\nvideo100,cute black and white cats\n")
    local = resolve_text_model(DEFAULT_MODEL)[0]
    ok = run("extract", "--tiers", "text", "--captions", csv, "--text-model", local, "--out", tmp_path / "f")
    assert ok.exit_code == 0, ok.output
    default = run("extract", "--tiers", "text", "--captions", csv, "--out", tmp_path / "g")
    assert default.exit_code == 0, default.output
    a = load_block(tmp_path / "f" / "text.parquet", "titles")
    b = load_block(tmp_path / "g" / "text.parquet", "titles")
    np.testing.assert_allclose(a.values, b.values, atol=1e-6)
    assert TextTier(str(local)).model_identity != TextTier().model_identity  # keyed apart
    error = one_error(
        run(
            "extract", "--tiers", "text", "--captions", csv, "--text-model", tmp_path, "--out", tmp_path / "h"
        )
    )
    assert "not a local sentence-transformers directory" in error and not (tmp_path / "h").exists()

"""A video's features do not depend on what else is in the run.

The feature store promises that a rerun, or a resume after a kill, writes the same rows. So a
clip's features must be the same bytes whether it is computed alone or among other clips, in
any order. The low tier also promises the same bytes under any thread count. Networks (mid,
high, prior) give the same bytes at a fixed thread count; another thread count changes their
last bits, within `THREAD_TOLERANCE`. The text tier batches captions with padding, within
`TEXT_TOLERANCE` of a caption embedded alone.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tiermem.cli import app
from tiermem.runtime import threads_for
from tiermem.store import KEY_COLUMNS, FeatureStore
from tiermem.tiers import get_tier
from tiermem.video.clip import Clip
from tiermem.video.decode import decode

#: Largest change of a network feature between 1 and 2 threads, relative to the vector's largest
#: magnitude (measured: mid 6e-7, high 2e-7, prior 2e-8).
THREAD_TOLERANCE = 1e-5
#: Largest change of a unit caption embedding between alone and batched (measured: 1.0e-7).
TEXT_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def clips(sample_clip_paths: list[Path]) -> list[Clip]:
    """Four real clips of different sources, decoded small (the tiers' arithmetic is what counts)."""
    names = ("bikes_000", "carphone_pristine_000", "bigbuckbunny_000", "bikes_001")
    paths = [next(p for p in sample_clip_paths if p.stem == n) for n in names]
    return [decode(p, frames=15, size=128) for p in paths]


def _orders(clips: list[Clip]) -> list[list[Clip]]:
    """The first clip alone, and among others in several orders and batch sizes."""
    first = clips[0]
    return [[first], clips[:3], clips[2::-1], [clips[3], first, clips[1]], clips[::-1]]


def _row_of_first(tier, batch: list[Clip], first: Clip) -> np.ndarray:
    values = tier.transform_batch(batch).values
    return values[next(i for i, c in enumerate(batch) if c is first)]


def test_low_tier_bytes_are_the_same_alone_in_any_batch_and_under_any_thread_count(clips: list[Clip]) -> None:
    low = get_tier("low").fit(clips)
    with threads_for(2):
        reference = low.transform(clips[0])
    for threads in (1, 2):
        with threads_for(threads):
            for batch in _orders(clips):
                row = _row_of_first(low, batch, clips[0])
                assert row.tobytes() == reference.tobytes(), (threads, len(batch))
    # the computations that used to depend on the batch: the HOG projection and detail share
    names = low.feature_names
    assert {"hog_pca_0_std", "detail_share_std"} <= set(names)


@pytest.mark.parametrize("name", ["mid", "high", "prior"])
def test_network_tiers_give_the_same_bytes_whatever_the_batch_at_one_thread_count(
    name: str, clips: list[Clip]
) -> None:
    # high: random weights where Kinetics weights are missing (plumbing of the arithmetic only)
    tier = get_tier(name, **({"weights": None} if name == "high" else {}))
    with threads_for(2):
        reference = tier.transform(clips[0])
        for batch in _orders(clips):
            row = _row_of_first(tier, batch, clips[0])
            assert row.tobytes() == reference.tobytes(), len(batch)
    with threads_for(1):
        one_thread = tier.transform(clips[0])
    scale = float(np.abs(reference).max())
    assert np.abs(one_thread - reference).max() <= THREAD_TOLERANCE * scale


def test_caption_embeddings_alone_and_batched_agree_within_the_stated_tolerance() -> None:
    text = get_tier("text")
    captions = [
        "a dog runs across a field",
        "a woman talks to the camera in a kitchen while cooking pasta with tomatoes",
        "cars",
    ]
    with threads_for(2):
        alone = text.embed_captions(captions[:1])[0]
        batched = text.embed_captions(captions[::-1])[2]
    assert np.abs(batched - alone).max() <= TEXT_TOLERANCE
    assert np.linalg.norm(alone) == pytest.approx(1.0, abs=1e-5)


def _features(store: Path, tier: str) -> dict[str, bytes]:
    table = FeatureStore(store).table(tier)
    columns = [c for c in table.columns if c not in KEY_COLUMNS]
    return {vid: row.tobytes() for vid, row in zip(table["video_id"], table[columns].to_numpy(np.float32))}


def test_a_video_extracted_alone_gets_the_bytes_it_gets_among_others(
    sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    names = ("bikes_000", "carphone_pristine_000", "bigbuckbunny_000")
    together = tmp_path / "together"
    together.mkdir()
    for n in names:
        shutil.copy(next(p for p in sample_clip_paths if p.stem == n), together / f"{n}.mp4")
    runner = CliRunner()
    common = ["--tiers", "low,mid", "--frames", "9", "--size", "128", "--json"]

    def extract(*args: str) -> dict:
        result = runner.invoke(app, ["extract", *args, *common], env={**os.environ, "TIERMEM_THREADS": "2"})
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    whole = tmp_path / "whole"
    assert (
        len(extract(str(together), "--out", str(whole), "--workers", "2", "--batch-size", "1")["done"]) == 3
    )
    # each video in a run of its own (as a resume that finds one video left), same settings
    alone = tmp_path / "alone"
    for n in names:
        report = extract(
            str(together / f"{n}.mp4"), "--out", str(alone), "--workers", "2", "--state", str(whole)
        )
        assert report["done"] == [n] and report["fitted"] == []
    for tier in ("low", "mid"):
        assert _features(alone, tier) == _features(whole, tier), tier

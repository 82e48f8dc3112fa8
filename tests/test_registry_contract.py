"""One contract for every registry, after scikit-learn's `check_estimator`: each listed name of
each registry builds, says what it is (a docstring), refuses a parameter it does not take in
one line, and, where it learns state, round-trips that state through save and load unchanged."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from tiermem.backbones.image import get_backbone, list_backbones
from tiermem.blocks import BlockLayout
from tiermem.datasets.registry import get_dataset, list_datasets, read_dataset
from tiermem.distinctiveness.base import Distinctiveness, get_distinctiveness, list_distinctiveness
from tiermem.errors import TiermemError
from tiermem.model.base import get_head, list_heads, load_head
from tiermem.model.losses import get_loss, list_losses
from tiermem.models import list_models, load
from tiermem.presets import get_preset, list_presets
from tiermem.tiers import get_tier, list_tiers
from tiermem.video import decode

RNG = np.random.default_rng(0)
#: Small enough to train every head in a second or two on the CPU.
SMALL_M3S = {"hidden": (16, 8), "train": {"epochs": 3}}
HEAD_PARAMS = {
    "ridge": {},
    "kernel-ridge": {},
    "m3s": SMALL_M3S,
    "ensemble": {"params": {"m3s": SMALL_M3S}},
    "auto": {"m3s": SMALL_M3S},
}


def one_line_refusal(build, what: str) -> str:
    """The message of the `TiermemError` that `build()` raises: it must be one line naming `what`."""
    with pytest.raises(TiermemError) as caught:
        build()
    message = str(caught.value)
    assert "\n" not in message and what in message, message
    return message


def documented(entry: object) -> None:
    doc = inspect.getdoc(entry)
    assert doc and len(doc.split()) >= 3, f"{entry!r} has no docstring"


def _registries_with_built_ins() -> dict[str, object]:
    from tiermem.datasets.registry import _LAYOUTS
    from tiermem.distinctiveness.base import _METHODS
    from tiermem.model.base import _HEADS
    from tiermem.tiers import _TIERS

    return {"tier": _TIERS, "head": _HEADS, "distinctiveness": _METHODS, "dataset": _LAYOUTS}


@pytest.mark.parametrize("kind", sorted(_registries_with_built_ins()))
def test_built_in_names_are_written_once_and_read_without_importing(kind: str) -> None:
    """Each built-in name lives only where its entry is defined: the names listed before any
    import (read from the modules' source) are exactly those the modules register when imported."""
    registry = _registries_with_built_ins()[kind]
    builtin = registry.builtin()
    assert builtin
    for module in set(builtin.values()):
        importlib.import_module(module)
    registered = registry.registered()
    assert set(builtin) <= set(registered)
    from_modules = {
        name
        for name, entry in registered.items()
        if getattr(entry, "read", entry).__module__ in set(builtin.values())
    }
    assert from_modules == set(builtin)


def test_every_registry_lists_its_built_in_names() -> None:
    assert {"low", "mid", "high", "text", "prior"} <= set(list_tiers())
    assert set(list_heads()) == {"auto", "ensemble", "kernel-ridge", "m3s", "ridge"}
    assert set(list_distinctiveness()) == {"cosine", "dbscan", "kde", "knn"}
    assert {"mse", "mse_tails", "spearman", "mse_to_spearman"} <= set(list_losses())
    assert {"m3s", "m3s-reference"} <= set(list_presets())
    assert {"memento10k", "videomem", "csv", "realbench"} <= set(list_datasets())
    assert {"efficientnet_lite0", "timm:", "torchvision:"} <= set(list_backbones())
    assert {"zero-shot", "memento10k-captions"} <= set(list_models())


@pytest.mark.parametrize("name", list_tiers())
def test_tier_contract(name: str, sample_clip_paths: list[Path]) -> None:
    tier = get_tier(name)  # networks load on first use, so building is cheap
    assert tier.name == name
    documented(type(tier))
    assert tier.config_hash() == get_tier(name).config_hash()  # the cache key is a function of the config
    one_line_refusal(lambda: get_tier(name, no_such_option=1), f"tier {name!r}")
    if tier.requires_fit:
        clips = [decode(p, frames=5, size=96) for p in sample_clip_paths[:6]]
        tier = get_tier(name, pca_components=3, pca_frames_per_clip=5).fit(clips)
        again = get_tier(name, pca_components=3, pca_frames_per_clip=5).load_state_dict(tier.state_dict())
        assert again.config_hash() == tier.config_hash()
        np.testing.assert_array_equal(
            again.transform_batch(clips[:2]).values, tier.transform_batch(clips[:2]).values
        )


@pytest.mark.parametrize("name", list_heads())
def test_head_contract(name: str, tmp_path: Path) -> None:
    documented(type(get_head(name)))
    assert get_head(name).name == name
    one_line_refusal(lambda: get_head(name, no_such_option=1), f"head {name!r}")
    if name != "ridge":  # a setting the head takes but cannot train with is refused when fitting
        bad = {
            "m3s": {"dropout": 2.0},
            "auto": {"m3s": {"epochs": 3}},
            "kernel-ridge": {"alphas": [0.0]},
            "ensemble": {"members": ["ridge", "ridge"]},
        }[name]
        one_line_refusal(lambda: get_head(name, **bad).fit(np.zeros((5, 2)), np.arange(5.0)), "")
    X = RNG.normal(size=(80, 6)).astype(np.float32)
    y = 1 / (1 + np.exp(-(X[:, 0] - 0.5 * X[:, 3])))
    layout = [BlockLayout("a", ["a0", "a1", "a2"]), BlockLayout("b", ["b0", "b1", "b2"])]
    head = get_head(name, **HEAD_PARAMS[name]).fit(X, y, layout=layout)
    loaded = load_head(head.save(tmp_path / name))
    assert loaded.name == name and loaded.layout_ == layout
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))


@pytest.mark.parametrize("name", list_distinctiveness())
def test_distinctiveness_contract(name: str, tmp_path: Path) -> None:
    est = get_distinctiveness(name, source="mid")
    assert est.name == name
    documented(type(est))
    one_line_refusal(lambda: get_distinctiveness(name, no_such_option=1), f"{name!r}")
    context = RNG.normal(size=(60, 5)).astype(np.float32)
    context[:20] += 4.0  # a cluster for DBSCAN to find
    est.fit(context)
    queries = RNG.normal(size=(7, 5)).astype(np.float32)
    loaded = Distinctiveness.load(est.save(tmp_path / f"{name}.npz"))
    assert loaded.name == name and loaded.feature_names == est.feature_names
    np.testing.assert_allclose(loaded.transform(queries), est.transform(queries), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list_losses())
def test_loss_contract(name: str) -> None:
    loss = get_loss(name)
    documented(loss)
    one_line_refusal(lambda: get_loss(name, no_such_option=1), f"loss {name}")
    generator = torch.Generator().manual_seed(0)
    pred = (0.4 + 0.2 * torch.rand(32, generator=generator)).requires_grad_()
    value = loss(pred, torch.rand(32, generator=generator), epoch=1, n_epochs=2)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0  # it can teach the head something


@pytest.mark.parametrize("name", list_presets())
def test_preset_contract(name: str) -> None:
    preset = get_preset(name, "memento10k")
    assert preset.name == name or name == "m3s-reference" and preset.name.startswith(name)
    assert len(preset.summary.split()) >= 3
    one_line_refusal(lambda: get_preset(f"{name}-nope"), "unknown preset")


@pytest.mark.parametrize("name", list_datasets())
def test_dataset_layout_contract(name: str, tmp_path: Path) -> None:
    layout = get_dataset(name)
    assert layout.name == name
    documented(layout.read)
    one_line_refusal(
        lambda: read_dataset(name, tmp_path / "nothing-here", no_such_option=1, target="score"),
        f"dataset layout {name!r}",
    )


@pytest.mark.parametrize("name", list_backbones())
def test_backbone_contract(name: str) -> None:
    from tiermem.backbones.image import _SOURCES

    documented(_SOURCES.get(name))
    spec = name + "resnet18" if name.endswith(":") else name
    backbone = get_backbone(spec, weights=None)  # random initialisation: plumbing only, no download
    assert not backbone.pretrained and backbone.dim > 0
    with torch.no_grad():
        pooled, _ = backbone.model(torch.zeros(1, 3, backbone.info.size, backbone.info.size))
    assert pooled.shape == (1, backbone.dim)
    one_line_refusal(
        lambda: get_backbone(name + "no-such-network" if name.endswith(":") else name + "-nope", None),
        "no-such-network" if name.endswith(":") else "unknown backbone",
    )


@pytest.mark.parametrize("name", list_models())
def test_model_contract(name: str, tmp_path: Path) -> None:
    model = load(name)
    assert model.name == name
    documented(type(model))
    assert model.card()["name"] == name
    one_line_refusal(lambda: load(name, no_such_option=1), name)
    if hasattr(model, "save"):  # a trained text model: its state round-trips
        texts = ["a man juggles fire on a beach", "a grey office corridor"]
        again = type(model).load(model.save(tmp_path / name))
        np.testing.assert_allclose(
            again.predict_text(texts)["score"], model.predict_text(texts)["score"], atol=1e-6
        )

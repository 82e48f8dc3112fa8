"""Named models, and `load`: one entry point for a fitted artifact or a model known by name.

    >>> import tiermem
    >>> model = tiermem.load("zero-shot")        # or a directory written by `tiermem fit`
    >>> tiermem.list_models()
    ['memento10k-captions', 'videomem-titles', 'zero-shot']

Every model follows `tiermem.models.protocol.Model`: the same `predict(videos)` returning
`tiermem.predictions.Predictions`, and a `card()`; those that read frames (`FrameModel`) also
give a `timeline` and a `heatmap`. The text models (`tiermem.models.text`, shipped in the package) score videos by their captions and
also score descriptions alone with `predict_text`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiermem.errors import TiermemError
from tiermem.models.protocol import Explainable, FrameModel, Model
from tiermem.registry import Registry

if TYPE_CHECKING:
    from tiermem.models.text import TextModel
    from tiermem.zero_shot import ZeroShotModel

#: Text models whose artifacts ship in the package (tiermem/models/shipped/<name>/).
SHIPPED_TEXT_MODELS = ("memento10k-captions", "videomem-titles")

_MODELS: Registry[Callable[..., Any]] = Registry("model")


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a factory that builds the model called `name`."""
    return lambda factory: _MODELS.register(name, factory)


def list_models() -> list[str]:
    """Names `load` accepts besides artifact directories."""
    return _MODELS.names()


@register_model("zero-shot")
def _zero_shot(**options: Any) -> "ZeroShotModel":
    from tiermem.zero_shot import ZeroShotModel

    return ZeroShotModel(**options)


def _shipped_text_model(name: str) -> Callable[..., "TextModel"]:
    def factory(**options: Any) -> "TextModel":
        from importlib.resources import files

        from tiermem.models.text import TextModel

        if options:
            raise TiermemError(f"{name}: a shipped text model takes no options ({', '.join(options)})")
        return TextModel.load(files("tiermem.models") / "shipped" / name)

    return factory


for _name in SHIPPED_TEXT_MODELS:
    register_model(_name)(_shipped_text_model(_name))


def load(model: str | os.PathLike[str], **options: Any) -> Model:
    """A model by name (``"zero-shot"``, ``"memento10k-captions"``, ...; see `list_models`) or a
    fitted artifact directory written by `tiermem fit`."""
    from tiermem.pipeline import Pipeline

    if isinstance(model, str) and model in list_models():
        return _MODELS.build(model, **options)
    path = Path(model)
    if options:
        raise TiermemError(
            f"{path}: options ({', '.join(options)}) apply to named models only; a fitted model keeps its own"
        )
    from tiermem.atomic import before_loading

    before_loading(path, "pipeline.json")  # a save cut between its two renames left the model beside its path
    if not path.exists():
        raise TiermemError(
            f"{path}: not a tiermem model (no such directory) nor a named model ({', '.join(list_models())})"
        )
    return Pipeline.load(path)


__all__ = [
    "SHIPPED_TEXT_MODELS",
    "Explainable",
    "FrameModel",
    "Model",
    "list_models",
    "load",
    "register_model",
]

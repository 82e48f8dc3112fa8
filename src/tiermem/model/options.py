"""A head's settings as a user gives them (CLI options, API keywords), checked before any work.

`HeadOptions` is the one place where user-facing head settings become the parameters of
`get_head`: the `train`, `ablate` and `fit` commands and `tiermem.fit` all go through it, so a
mistyped loss or an option that does not apply to the chosen head fails in a second, before
extraction or training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from tiermem.errors import TiermemError
from tiermem.model.base import Head
from tiermem.model.registry import get_head, list_heads
from tiermem.model.config import TrainConfig


@dataclass
class HeadOptions:
    """The head to build and how to train it; the training fields apply to the m3s head (and to
    the auto head's M3-S candidate) only."""

    head: str = "auto"
    loss: str | None = None  # m3s: mse when not given
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-5
    hidden: tuple[int, ...] = (512, 64)
    dropout: float = 0.0
    seed: int = 0
    ensemble: int = 1
    early_stopping: float = 0.1
    loss_params: dict[str, Any] = field(default_factory=dict)

    def changed_m3s_options(self) -> list[str]:
        """The m3s-only settings given a value other than their default."""
        default = HeadOptions()
        return [
            f.name for f in fields(self)
            if f.name not in ("head", "seed") and getattr(self, f.name) != getattr(default, f.name)
        ]

    def params(self) -> dict[str, Any]:
        """Keyword parameters of `get_head(self.head, ...)`, JSON-able; raises on a bad setting."""
        if self.head not in list_heads():
            raise TiermemError(f"unknown head {self.head!r}; available: {', '.join(list_heads())}")
        if self.head not in ("m3s", "auto"):  # the auto head's M3-S candidate takes them
            changed = self.changed_m3s_options()
            if changed:
                shown = ", ".join("--" + name.replace("_", "-") for name in changed)
                verb = "applies" if len(changed) == 1 else "apply"
                raise TiermemError(f"{shown} {verb} to the m3s head only, not {self.head}")
            return {}
        train = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            loss=self.loss or "mse", loss_params=dict(self.loss_params), seed=self.seed, ensemble=self.ensemble,
        )
        params: dict[str, Any] = {"hidden": list(self.hidden), "dropout": self.dropout, "train": train.to_dict(),
                                  "early_stopping": self.early_stopping}
        if self.head == "auto":
            params = {"m3s": params, "seed": self.seed}
        get_head(self.head, **params).check_params()
        return params

    def build(self) -> Head:
        """A new unfitted head with these settings."""
        return get_head(self.head, **self.params())


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden layer sizes from ``"512,64"``: one or more positive integers."""
    try:
        sizes = tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise TiermemError(f"--hidden {text!r}: expected comma-separated positive layer sizes like 512,64")
    return sizes


__all__ = ["HeadOptions", "parse_hidden"]

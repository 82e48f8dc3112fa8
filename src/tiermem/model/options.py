"""A head's settings as a user gives them (CLI options, API keywords), checked before any work.

`HeadOptions` is the one place where user-facing head settings become the parameters of
`get_head`: the `train`, `ablate` and `fit` commands and `tiermem.fit` all go through it, so a
mistyped loss or an option that does not apply to the chosen head fails in a second, before
extraction or training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from tiermem.errors import TiermemError
from tiermem.model.base import Head
from tiermem.model.config import TrainConfig
from tiermem.model.registry import get_head, list_heads

#: What a head trains with where neither the caller nor the preset says otherwise.
DEFAULTS: dict[str, Any] = {
    "head": "auto",
    "epochs": 20,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "hidden": (512, 64),
    "dropout": 0.0,
    "ensemble": 1,
    "early_stopping": 0.1,
    "step_size": 5,
    "gamma": 0.2,
}
#: Heads that train an M3-S MLP (themselves, as a candidate or as a member) and so take its settings.
TRAINS_M3S = ("m3s", "auto", "ensemble")
#: The training loop's settings: only heads in `TRAINS_M3S` take them.
TRAINING = (
    "loss",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "hidden",
    "dropout",
    "ensemble",
    "early_stopping",
    "loss_params",
    "step_size",
    "gamma",
    "standardise",
)


@dataclass
class HeadOptions:
    """The head to build and how to train it; the training fields apply to the m3s head (and to
    the auto head's M3-S candidate and an ensemble's M3-S member) only; `members` names an
    ensemble's heads.

    A field left None is unset: the preset fills it, then `DEFAULTS` (`with_preset`), so a value
    the caller gives always wins, even one equal to a default (``lr=1e-3`` under a preset whose
    learning rate is another).
    """

    head: str | None = None  # default: auto
    loss: str | None = None  # m3s: mse when not given
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    hidden: tuple[int, ...] | None = None
    dropout: float | None = None
    seed: int = 0
    ensemble: int | None = None
    early_stopping: float | None = None
    loss_params: dict[str, Any] = field(default_factory=dict)
    step_size: int | None = (
        None  # StepLR: the learning rate is multiplied by `gamma` every `step_size` epochs
    )
    gamma: float | None = None
    standardise: list[str] | None = None  # blocks the m3s head z-scores (None: all)
    members: tuple[str, ...] | None = None  # the ensemble head's members (None: kernel-ridge, m3s)
    preset: str = "m3s"  # `tiermem.presets`: fills the settings left unset

    def given_training_options(self) -> list[str]:
        """The training settings the caller set (m3s only)."""
        return [name for name in TRAINING if getattr(self, name) not in (None, {})]

    def with_preset(self, dataset: str | None = None) -> "HeadOptions":
        """These options with every unset setting filled: by the preset (`dataset` picks a
        per-dataset preset's variant), then by `DEFAULTS`. A head without epochs gets no
        training settings. The preset's parameters of the loss finally used come first, the
        ones given win."""
        from tiermem.presets import get_preset

        preset = get_preset(self.preset, dataset)
        head = self.head if self.head is not None else preset.head.get("head", DEFAULTS["head"])
        if not replace(self, head=head).trains_m3s():
            return replace(self, head=head, preset=preset.name)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in [*preset.head.items(), *DEFAULTS.items()]:
            if values.get(name) is None:
                values[name] = tuple(value) if name == "hidden" else value
        values["head"] = head
        values["loss_params"] = {**preset.loss_defaults.get(values["loss"] or "mse", {}), **self.loss_params}
        return HeadOptions(**{**values, "preset": preset.name})

    def trains_m3s(self) -> bool:
        """Whether the head trains an M3-S MLP (itself, as the auto head's candidate, or as an
        ensemble's member) and so takes the training settings."""
        if self.head == "ensemble":
            return "m3s" in self.ensemble_members()
        return self.head in TRAINS_M3S

    def ensemble_members(self) -> list[str]:
        """The ensemble head's members, as given or by default."""
        from tiermem.model.ensemble import DEFAULT_MEMBERS

        return list(self.members or DEFAULT_MEMBERS)

    def params(self, dataset: str | None = None) -> dict[str, Any]:
        """Keyword parameters of `get_head(head, ...)` with the preset applied (for `dataset`),
        JSON-able; raises on a bad setting. The head's name is `with_preset(dataset).head`."""
        return self.with_preset(dataset)._params()

    def _params(self) -> dict[str, Any]:
        if self.head not in list_heads():
            raise TiermemError(f"unknown head {self.head!r}; available: {', '.join(list_heads())}")
        if self.members is not None and self.head != "ensemble":
            raise TiermemError(f"--members applies to the ensemble head only, not {self.head}")
        if not self.trains_m3s():
            changed = self.given_training_options()
            if changed:
                shown = ", ".join("--" + name.replace("_", "-") for name in changed)
                verb = "applies" if len(changed) == 1 else "apply"
                where = (
                    f"{self.head} of {', '.join(self.ensemble_members())}"
                    if self.head == "ensemble"
                    else self.head
                )
                raise TiermemError(f"{shown} {verb} to the m3s head only, not {where}")
            if self.head != "ensemble":
                return {}
            params = {"members": self.ensemble_members(), "params": {}}
            get_head(self.head, **params).check_params()
            return params
        train = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            step_size=self.step_size,
            gamma=self.gamma,
            loss=self.loss or "mse",
            loss_params=dict(self.loss_params),
            seed=self.seed,
            ensemble=self.ensemble,
        )
        params: dict[str, Any] = {
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "train": train.to_dict(),
            "early_stopping": self.early_stopping,
        }
        if self.standardise is not None:
            params["standardise"] = list(self.standardise)
        if self.head == "auto":
            params = {"m3s": params, "seed": self.seed}
        elif self.head == "ensemble":
            params = {"members": self.ensemble_members(), "params": {"m3s": params}}
        get_head(self.head, **params).check_params()
        return params

    def build(self, dataset: str | None = None) -> Head:
        """A new unfitted head with these settings (the preset applied for `dataset`)."""
        resolved = self.with_preset(dataset)
        return get_head(resolved.head, **resolved._params())


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden layer sizes from ``"512,64"``: one or more positive integers."""
    try:
        sizes = tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise TiermemError(f"--hidden {text!r}: expected comma-separated positive layer sizes like 512,64")
    return sizes


def parse_members(text: str) -> tuple[str, ...]:
    """An ensemble's members from ``"kernel-ridge,m3s"``: head names, checked by the head."""
    members = tuple(m.strip() for m in text.split(",") if m.strip())
    if not members:
        raise TiermemError(f"--members {text!r}: expected comma-separated head names like kernel-ridge,m3s")
    return members


__all__ = ["DEFAULTS", "HeadOptions", "TRAINING", "TRAINS_M3S", "parse_hidden", "parse_members"]

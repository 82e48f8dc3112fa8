"""How an M3-S head trains, as plain JSON-able data (no torch needed to read or write it).

Defaults are the paper's Memento10k setting: Adam lr 1e-3, weight decay 1e-5, StepLR(5, 0.2),
20 epochs, batch 32.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tiermem.errors import TiermemError


@dataclass
class TrainConfig:
    """How to train one M3-S head (all JSON-able; saved with the model)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-5
    step_size: int = 5  # StepLR: multiply lr by `gamma` every `step_size` epochs
    gamma: float = 0.2
    loss: str = "mse"
    loss_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    ensemble: int = 1  # K seeds (seed, seed+1, ...); predictions are their mean
    keep_best: bool = True  # keep the epoch with the best validation Spearman
    # Start the output bias at logit(mean(y)), so the sigmoid begins at the mean score instead
    # of 0.5: on a few hundred videos (~10 steps an epoch, lr decaying after 5 epochs) the
    # first steps otherwise go to learning that offset, not the ranking.
    init_bias: bool = True
    # Torch threads while training (0: tiermem.runtime's default). One, because a batch-32
    # step is too small to split: on the shared 2-core machine a second thread made training
    # 12x slower (OpenMP workers spinning against other jobs), see benchmarks/head_training.py.
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return cls(**d)

    def validate(self) -> None:
        """Refuse settings that cannot train: counts below 1, negative or non-finite rates
        (a learning rate of 0 is allowed: it keeps the initial weights)."""
        if (
            self.epochs < 1
            or self.batch_size < 1
            or self.ensemble < 1
            or self.step_size < 1
            or self.threads < 0
        ):
            raise TiermemError(
                f"epochs, batch_size, ensemble and step_size must be >= 1 (got {self.epochs}, "
                f"{self.batch_size}, {self.ensemble}, {self.step_size})"
            )
        if not (math.isfinite(self.lr) and self.lr >= 0):
            raise TiermemError(f"--lr must be >= 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise TiermemError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if not (math.isfinite(self.gamma) and self.gamma > 0):
            raise TiermemError(f"gamma (the learning-rate decay) must be > 0, got {self.gamma}")
        import torch

        from tiermem.model.losses import get_loss  # torch: imported only when a head trains

        loss = get_loss(self.loss, **self.loss_params)
        try:  # a bad value of a loss parameter (a rank that does not exist) fails here, not mid-training
            loss(
                torch.tensor([0.2, 0.5, 0.7]),
                torch.tensor([0.1, 0.6, 0.4]),
                epoch=self.epochs - 1,
                n_epochs=self.epochs,
            )
        except (ValueError, TypeError, RuntimeError) as exc:
            raise TiermemError(f"loss {self.loss}: {exc}") from None


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    val_spearman: float  # NaN without validation data (or for a constant prediction)
    lr: float


__all__ = ["EpochLog", "TrainConfig"]

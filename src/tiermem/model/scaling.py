"""An affine map from a target's own units to the [0, 1] range a memorability head predicts in.

Memorability scores are shares of viewers, in [0, 1], and the M3-S head ends in a sigmoid (ridge
clips to [0, 1]). Other targets are not: Memento10k's ``decay_alpha`` (how fast memorability
falls with the lag) is mostly below 0, and some releases count on a 0-100 scale. A head fitted
on such a target learns it scaled so the training range [min, max] becomes [0, 1], and maps its
outputs back, so predictions come out in the target's units and within its training range.
Targets already in [0, 1] are learnt as they are (the identity, which is not saved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiermem.errors import DataMismatchError, TiermemError


@dataclass(frozen=True)
class TargetScaling:
    """``scaled = (y - low) / (high - low)``; the identity when ``(low, high) == (0, 1)``."""

    low: float = 0.0
    high: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray) -> "TargetScaling":
        """The identity for targets inside [0, 1], else the map of [min(y), max(y)] onto [0, 1].

        Constant targets leave nothing to learn (every ranking ties) and are refused.
        """
        y = np.asarray(y, dtype=np.float64)
        low, high = float(y.min()), float(y.max())
        if low == high:
            raise DataMismatchError(f"all {y.size} training targets equal {low:g}: there is nothing to learn")
        if 0.0 <= low and high <= 1.0:
            return cls()
        return cls(low, high)

    @property
    def is_identity(self) -> bool:
        return (self.low, self.high) == (0.0, 1.0)

    def transform(self, y: np.ndarray) -> np.ndarray:
        """Targets in the head's [0, 1] units."""
        y = np.asarray(y, dtype=np.float64)
        return y if self.is_identity else (y - self.low) / (self.high - self.low)

    def inverse(self, p: np.ndarray) -> np.ndarray:
        """Head outputs back in the target's units."""
        p = np.asarray(p, dtype=np.float64)
        return p if self.is_identity else self.low + p * (self.high - self.low)

    def describe(self) -> str:
        """One line for the command line's output."""
        return (
            f"targets span [{self.low:.4g}, {self.high:.4g}], outside [0, 1]: the head learns them "
            f"scaled to [0, 1] and predicts {self.low:.4g} + {self.high - self.low:.4g} × output"
        )

    def to_dict(self) -> dict[str, float]:
        return {"low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, d: Any) -> "TargetScaling":
        """Read a saved scaling; refuses bounds that are not finite numbers with low < high."""
        try:
            low, high = float(d["low"]), float(d["high"])
        except (KeyError, TypeError, ValueError):
            raise TiermemError(f"expected {{'low': number, 'high': number}}, found {d!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise TiermemError(f"bounds must be finite with low < high, found low={low}, high={high}")
        return cls(low, high)


__all__ = ["TargetScaling"]

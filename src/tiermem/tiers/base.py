"""The tier contract, after scikit-learn's estimators.

A tier turns one decoded `Clip` into a fixed-length named feature vector. Constructors only
store configuration; `fit` learns (stateless tiers: no-op) and sets attributes ending in `_`;
`transform` never learns. Fitted state round-trips through `state_dict()` as plain numpy
arrays plus JSON-able values, so it can be saved without pickle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from tiermem.video.clip import Clip


@dataclass
class TierResult:
    """A batch of outputs: `values` (N, D) float32 in `feature_names` order, plus per-video facts.

    `facts` holds small JSON-able explanations (top ImageNet labels, face counts, ...) that
    are not features but help a person understand a score; empty dicts where a tier has none.
    """

    values: np.ndarray
    facts: list[dict[str, Any]] = field(default_factory=list)


class TierFit(Protocol):
    """A fit in progress (`Tier.start_fit`): `add` each clip's rows in order, then `finish`,
    which sets the tier's fitted state."""

    def add(self, rows: np.ndarray) -> None: ...

    def finish(self) -> None: ...


class Tier:
    """Base class: subclasses set `name`, implement `feature_names` and `transform`."""

    name: ClassVar[str] = ""
    #: True when `fit` learns something that `transform` needs.
    requires_fit: ClassVar[bool] = False
    #: Smallest side (pixels) of the square frames the tier can work on.
    min_frame_size: ClassVar[int] = 1
    #: Raised when a feature's definition changes, so feature-store rows computed before are
    #: not reused (part of the cache key from version 2 on).
    version: ClassVar[int] = 1

    #: Where this tier's network (or other device work) runs ("cpu" or "cuda"; set with `on`).
    #: Not part of the config, but of the cache key when it is CUDA (features differ by rounding).
    device: str = "cpu"
    #: Whether the tier runs a neural network; the low tier does not.
    runs_network: bool = False

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = dict(config)

    @property
    def uses_device(self) -> bool:
        """Whether `on(device)` moves work of this tier to the device: what `--device` places
        (every network tier; the low tier, whose FFT and HOG run on a GPU)."""
        return self.runs_network

    def on(self, device: str) -> "Tier":
        """Run this tier's network on `device` (auto, cpu or cuda); returns the tier."""
        from tiermem.device import resolve_device

        self.device = resolve_device(device)
        return self

    # -- description -------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        raise NotImplementedError

    def config_hash(self) -> str:
        """Hash of the configuration and fitted state: the feature store's second cache key."""
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update(json.dumps(self.config, sort_keys=True, default=str).encode())
        if self.version > 1:
            h.update(f"version={self.version}".encode())
        if self.device != "cpu":
            h.update(f"device={self.device}".encode())
        for key, value in sorted(self.state_dict().items()):
            h.update(key.encode())
            if isinstance(value, np.ndarray):
                h.update(np.ascontiguousarray(value).tobytes())
            else:
                h.update(json.dumps(value, sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]

    def check_saved_features(self, names: Sequence[str]) -> str | None:
        """Why a model saved with these feature names cannot use this tier (None: it can)."""
        return None

    # -- learning ----------------------------------------------------------------------
    def fit(self, clips: Iterable[Clip], frames_per_clip: int | None = None) -> "Tier":
        """Learn from a corpus of clips; a no-op for stateless tiers.

        `frames_per_clip`: a tier that learns from a few frames of each clip uses at least this
        many (given for a corpus of few clips, decoded with more frames each).
        """
        return self

    # A tier may also learn from the extraction's own pass, so that a run does not decode its
    # fitting sample twice: each sampled clip is `defer`red (its work done, the fitted step left
    # out, plus the rows it gives the fit), the rows go to a `start_fit()` in input order, then
    # `complete` turns each deferred clip into its features.

    #: Whether the tier supports `defer`, `start_fit`, `complete` and `deferred_bytes`.
    fits_on_pass: ClassVar[bool] = False

    def defer(self, clip: Clip, frames_per_clip: int | None = None) -> Any:
        """The clip's work before the fit, holding the rows it gives the fit as ``.fit_rows``."""
        raise NotImplementedError(f"tier {self.name} cannot be fitted on the extraction's pass")

    def start_fit(self) -> "TierFit":
        """A fit that takes deferred clips' `fit_rows` one clip at a time, in order."""
        raise NotImplementedError(f"tier {self.name} cannot be fitted on the extraction's pass")

    def complete(self, deferred: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """A deferred clip's features and facts, once the tier is fitted."""
        raise NotImplementedError(f"tier {self.name} cannot be fitted on the extraction's pass")

    def deferred_bytes(self, num_frames: int, size: int) -> int:
        """Bytes a deferred clip of `num_frames` frames of `size` x `size` pixels holds until completed."""
        raise NotImplementedError(f"tier {self.name} cannot be fitted on the extraction's pass")

    @property
    def is_fitted(self) -> bool:
        return not self.requires_fit or bool(self.state_dict())

    # -- inference ---------------------------------------------------------------------
    def transform(self, clip: Clip) -> np.ndarray:
        """One clip in, a float32 vector of len(feature_names) out."""
        raise NotImplementedError

    def transform_batch(self, clips: Sequence[Clip]) -> TierResult:
        """Many clips in one call; network tiers override this to batch inference."""
        values = np.stack([self.transform(c) for c in clips]).astype(np.float32)
        return TierResult(values=values, facts=[{} for _ in clips])

    # -- fitted state ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Fitted state as numpy arrays and JSON-able values; empty when nothing was fitted."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> "Tier":
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


class PretrainedTier(Tier):
    """A tier running network weights: its cache key also holds the weights' identity.

    With ``weights=PATH`` that is the file's content hash (a retrained file gets new features),
    computed once per tier instance; "default" and None (random init) stand for themselves.
    """

    runs_network = True

    _weights_id: str | None = None

    def config_hash(self) -> str:
        if self._weights_id is None:
            from tiermem.backbones.weights import weights_identity

            self._weights_id = weights_identity(self.config["weights"])
        h = hashlib.sha256(super().config_hash().encode())
        h.update(self._weights_id.encode())
        return h.hexdigest()[:16]

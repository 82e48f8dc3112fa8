"""A pipeline's configuration: which tiers, distinctiveness and head, how frames are decoded,
and the checks that refuse a bad one in a line before any work (`PipelineConfig.validate`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from tiermem.errors import TiermemError


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _names(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


def _options(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, dict) for k, x in v.items())


#: Each config field's check and what it must be, for messages; names are checked against the
#: registries in `PipelineConfig.validate`.
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "target": (lambda v: isinstance(v, str) and bool(v), "a column name"),
    "tiers": (_names, "a list of tier names"),
    "distinct": (_names, "a list of distinctiveness methods"),
    "distinct_source": (lambda v: isinstance(v, str), "a tier name"),
    "distinct_params": (_options, "an object of method -> parameters"),
    "head": (lambda v: isinstance(v, str), "a head name"),
    "head_params": (lambda v: isinstance(v, dict), "an object of head parameters"),
    "tier_config": (_options, "an object of tier -> options"),
    "frames": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "size": (lambda v: _is_int(v) and v >= 16, "an integer >= 16"),
    "mode": (lambda v: v in ("stretch", "crop"), "'stretch' or 'crop'"),
    "val_fraction": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v < 1,
        "a number in (0, 1): the fit reports on a validation split",
    ),
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**32, "an integer in [0, 2^32)"),
    "ablate": (lambda v: isinstance(v, bool), "true or false"),
    "preset": (lambda v: isinstance(v, str) and bool(v), "a preset name"),
}


@dataclass
class PipelineConfig:
    """What to extract and how to learn; every field is JSON-able and saved in the artifact."""

    target: str
    tiers: list[str] = field(default_factory=lambda: ["low", "mid"])
    distinct: list[str] = field(default_factory=list)  # distinctiveness methods, e.g. ["knn"]
    distinct_source: str = "mid"
    distinct_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> params
    head: str = "auto"
    head_params: dict[str, Any] = field(default_factory=dict)
    tier_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    frames: int = 45
    size: int = 256
    mode: str = "stretch"
    val_fraction: float = 0.1
    seed: int = 0
    ablate: bool = True
    preset: str = "m3s"  # the `tiermem.presets` entry the other fields were set from (a record)

    @property
    def distinct_sources(self) -> list[str]:
        """The tiers distinctiveness is measured on: `distinct_source` may name several, "mid,high"."""
        return [s.strip() for s in self.distinct_source.split(",") if s.strip()]

    def distinct_contexts(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(method, source, parameters) of every distinctiveness context: each method on each
        source, with ``distinct_params[method]`` updated by ``distinct_params["method@source"]``."""
        return [
            (
                method,
                source,
                {
                    **self.distinct_params.get(method, {}),
                    **self.distinct_params.get(f"{method}@{source}", {}),
                },
            )
            for method in self.distinct
            for source in self.distinct_sources
        ]

    def distinct_file(self, method: str, source: str) -> str:
        """A context's file name in the artifact: ``<method>.npz``, or ``<method>@<source>.npz``
        when distinctiveness has several sources."""
        return f"{method}.npz" if len(self.distinct_sources) == 1 else f"{method}@{source}.npz"

    @property
    def decode(self) -> dict[str, Any]:
        """How frames are sampled for the frame tiers."""
        return {"frames": self.frames, "size": self.size, "mode": self.mode}

    @classmethod
    def from_dict(cls, d: Any) -> "PipelineConfig":
        """A config read back from JSON: every key known, every value of its type and range."""
        if not isinstance(d, dict):
            raise TiermemError(f"expected a JSON object, found {type(d).__name__}")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise TiermemError(f"unknown setting(s) {', '.join(map(str, unknown))}")
        if "target" not in d:
            raise TiermemError("no target")
        config = cls(**d)
        config.validate()
        return config

    def validate(self) -> None:
        """Check every name and setting; called before extraction, which can take hours, and
        when a saved model is loaded."""
        from tiermem.distinctiveness.registry import get_distinctiveness
        from tiermem.model.registry import get_head
        from tiermem.tiers import get_tier, list_tiers

        for f in fields(self):
            check, what = _FIELDS[f.name]
            value = getattr(self, f.name)
            if not check(value):
                raise TiermemError(f"{f.name} must be {what}, got {value!r}")
        if not self.tiers:
            raise TiermemError("a pipeline needs at least one tier")
        unknown = [t for t in self.tiers if t not in list_tiers()]
        if unknown:
            raise TiermemError(f"unknown tier(s) {', '.join(unknown)}; available: {', '.join(list_tiers())}")
        stray = [t for t in self.tier_config if t not in self.tiers]
        if stray:
            raise TiermemError(
                f"options for tier(s) {', '.join(stray)}, which are not among the tiers ({', '.join(self.tiers)})"
            )
        for tier in self.tiers:  # builds nothing heavy: networks load on first use
            get_tier(tier, **self.tier_config.get(tier, {}))
        absent = [s for s in self.distinct_sources if s not in self.tiers]
        if self.distinct and (absent or not self.distinct_sources):
            raise TiermemError(
                f"distinctiveness source tier {(absent or [''])[0]!r} is not among the tiers "
                f"({', '.join(self.tiers)})"
            )
        if len(self.tiers) + bool(self.distinct) > 6:
            raise TiermemError("at most 6 blocks (tiers + distinctiveness): exact Shapley costs 2^n")
        for method, source, params in self.distinct_contexts():
            get_distinctiveness(method, source=source, **params)
        get_head(self.head, **self.head_params).check_params()


__all__ = ["PipelineConfig"]

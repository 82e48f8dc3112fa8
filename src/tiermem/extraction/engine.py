"""Where extraction's workers run: `local` (processes on this machine) or `ray` (a Ray cluster).

    >>> extract(videos, tiers=["low", "mid"], out="features/", workers=8, engine="ray")
    >>> extract(videos, ..., engine=Engine("ray", address="ray://head:10001", gpus_per_worker=1))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tiermem.device import DEVICES
from tiermem.errors import TiermemError

#: The engines `Engine.name` takes.
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Engine:
    """An engine and, for Ray, the cluster and each worker's resource request."""

    name: str = "local"
    address: str | None = None  # Ray: "auto", "ray://HOST:10001", or None for a local cluster
    cpus_per_worker: float = 1.0  # Ray: CPUs each worker asks for (and its threads)
    gpus_per_worker: float = 0.0  # Ray: GPUs each worker asks for
    device: str = "auto"  # where the networks run: auto (CUDA when there), cpu or cuda

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise TiermemError(f"--engine must be one of {', '.join(ENGINES)}, got {self.name!r}")
        if not self.cpus_per_worker > 0:
            raise TiermemError(f"--cpus-per-worker must be positive, got {self.cpus_per_worker:g}")
        if not self.gpus_per_worker >= 0:
            raise TiermemError(f"--gpus-per-worker must be 0 or more, got {self.gpus_per_worker:g}")
        if self.device not in DEVICES:
            raise TiermemError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.name == "local" and (self.address or self.gpus_per_worker):
            raise TiermemError("--ray-address and --gpus-per-worker apply to --engine ray only")

    @classmethod
    def of(cls, value: "str | Engine | None", device: str | None = None) -> "Engine":
        """An engine from its name (or the engine itself; None: local), on `device` if given."""
        engine = value if isinstance(value, Engine) else cls(value or "local")
        return replace(engine, device=device) if device is not None else engine


__all__ = ["ENGINES", "Engine"]

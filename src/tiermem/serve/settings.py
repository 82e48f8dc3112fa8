"""What `tiermem serve` runs with: the model, where jobs live, how many workers, the limits."""

from __future__ import annotations

import hashlib
import socket
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tiermem import __version__
from tiermem.errors import TiermemError


@dataclass(frozen=True)
class ServeSettings:
    """The service's settings; JSON-able, so worker processes receive the same ones."""

    model: str = "zero-shot"  # a fitted model directory, or "zero-shot"
    data: str = "tiermem-data"  # jobs.sqlite3, uploads/ (by content hash)
    workers: int = 1
    api_key: str | None = None
    max_upload_mb: float = 512.0
    max_queue: int = 100
    cpus: int = 0  # cores the workers share (0: those this process may use)
    device: str = "auto"  # where the workers' networks run: auto, cpu or cuda
    host: str = "127.0.0.1"  # the address it listens on
    allowed_hosts: tuple[str, ...] = ()  # Host header names served besides loopback and `host`
    cors_origins: tuple[str, ...] = ()  # web pages of other origins allowed to call the API

    def __post_init__(self) -> None:
        # JSON gives lists: the settings stay hashable and equal to the ones sent
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        for origin in self.cors_origins:
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise TiermemError(
                    f"--cors-origin {origin!r}: give a scheme and host, e.g. https://dashboard.example.com"
                )
        if self.workers < 1:
            raise TiermemError(f"--workers must be at least 1, got {self.workers}")
        if not self.max_upload_mb > 0:
            raise TiermemError(f"--max-upload-mb must be positive, got {self.max_upload_mb:g}")
        if self.max_queue < 1:
            raise TiermemError(f"--max-queue must be at least 1, got {self.max_queue}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise TiermemError(f"--device must be one of auto, cpu, cuda, got {self.device!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise TiermemError("--api-key must not be empty")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ServeSettings":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def root(self) -> Path:
        return Path(self.data)

    @property
    def database(self) -> Path:
        return self.root / "jobs.sqlite3"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def model_name(self) -> str:
        return self.model if self.model == "zero-shot" else Path(self.model).name

    @property
    def threads_per_worker(self) -> int:
        """Torch threads per worker: the cores divided among them, so none is oversubscribed."""
        from tiermem.runtime import default_threads

        cpus = self.cpus or default_threads()
        return max(1, cpus // self.workers)

    def check_model(self) -> None:
        """Refuse at once a model that is neither "zero-shot" nor a fitted model directory."""
        from tiermem.models import SHIPPED_TEXT_MODELS

        if self.model in SHIPPED_TEXT_MODELS:
            raise TiermemError(
                f"{self.model}: a text model scores captions, which uploaded videos do not carry; "
                "score descriptions with `tiermem predict-text` or videos with `tiermem predict --captions`"
            )
        if self.model != "zero-shot" and not (Path(self.model) / "pipeline.json").is_file():
            raise TiermemError(f"{self.model}: not a tiermem model (no pipeline.json) nor 'zero-shot'")

    def check_place(self, port: int) -> None:
        """Refuse at once, before any banner: a `--data` that is not a folder this process can
        create or use, `--device cuda` where torch sees no GPU (every job would fail), and a
        port another process already listens on."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise TiermemError(f"--data {root}: is a file, not a folder for the jobs and uploads")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TiermemError(f"--data {root}: cannot be created ({exc.strerror or exc})") from None
        if self.device == "cuda":
            from tiermem.device import resolve_device

            resolve_device("cuda")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind((self.host, port))
            except OSError as exc:
                raise TiermemError(f"cannot listen on {self.host}:{port} ({exc.strerror or exc})") from None

    def model_key(self) -> str:
        """Identifies the model's predictions: results are reused for this model only."""
        if self.model == "zero-shot":
            return f"zero-shot/tiermem-{__version__}"
        return hashlib.sha256((Path(self.model) / "pipeline.json").read_bytes()).hexdigest()


__all__ = ["ServeSettings"]

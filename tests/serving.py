"""A real `tiermem serve` process for tests: started on a free localhost port, waited for, stopped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`tiermem serve --model MODEL --data DATA` as a subprocess; `url` once it answers /healthz."""

    def __init__(
        self,
        model: str | Path,
        data: Path,
        log: Path,
        workers: int = 1,
        port: int | None = None,
        extra: tuple[str, ...] = (),
        cwd: Path | None = None,
    ) -> None:
        self.model, self.data, self.log, self.workers, self.extra = str(model), data, log, workers, extra
        self.cwd = cwd
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> "Server":
        script = Path(sys.executable).with_name("tiermem")
        cmd = (
            [str(script)] if script.exists() else [sys.executable, "-c", "from tiermem.cli import app; app()"]
        )
        cmd += [
            "serve",
            "--model",
            self.model,
            "--data",
            str(self.data),
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            *self.extra,
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TIERMEM_THREADS": "2"},
                cwd=self.cwd,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"tiermem serve exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"tiermem serve did not answer within {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait_done(self, job_id: str, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = httpx.get(f"{self.url}/v1/jobs/{job_id}", timeout=5.0).json()
            if job["status"] in ("done", "failed"):
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} not finished after {timeout} s")

    def submit(self, path: Path, **form: str) -> dict[str, Any]:
        with path.open("rb") as f:
            answer = httpx.post(
                f"{self.url}/v1/jobs", files={"file": (path.name, f, "video/mp4")}, data=form, timeout=60.0
            )
        assert answer.status_code == 202, answer.text
        return answer.json()["jobs"][0]


def chromium() -> str | None:
    """Debian's chromium (or chrome) executable, if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None

"""Property-based fuzzing of the HTTP API with schemathesis, against a real `tiermem serve`
reading its own /openapi.json: no request gets a 500, every answer's status, content type,
headers and body match what the schema documents, and nothing is written outside --data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving import Server

pytest.importorskip("schemathesis", reason="schemathesis is in the test extra")

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


@pytest.mark.slow
def test_the_api_holds_to_its_schema_under_fuzzing(fitted, tmp_path: Path) -> None:
    _, model, _ = fitted
    cwd, data = tmp_path / "cwd", tmp_path / "data"
    cwd.mkdir()
    model_before = snapshot(model)
    server = Server(model, data, tmp_path / "serve.log", extra=("--api-key", "k"), cwd=cwd).start()
    try:
        deadline = time.monotonic() + 120  # /v1/model answers 503 (documented) until the worker has loaded it
        while not httpx.get(f"{server.url}/healthz", headers={"X-API-Key": "k"}).json().get("model_loaded"):
            assert time.monotonic() < deadline, "the model never loaded"
            time.sleep(0.3)
        script = Path(sys.executable).with_name("schemathesis")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "schemathesis.cli"]
        done = subprocess.run(
            [
                *command, "run", f"{server.url}/openapi.json", "--checks", ",".join(CHECKS),
                "--max-examples", "15", "--seed", "1", "--header", "X-API-Key: k", "--request-timeout", "60",
            ],
            capture_output=True, text=True, timeout=600, cwd=cwd,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )  # fmt: skip
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout and "generated" in done.stdout
    for own in (".hypothesis", ".schemathesis"):  # schemathesis's own example databases
        shutil.rmtree(cwd / own, ignore_errors=True)
    assert sorted(os.listdir(cwd)) == []  # the server wrote nothing where it was started
    assert snapshot(model) == model_before  # nor in its model
    assert {p.name for p in data.iterdir()} <= {
        "jobs.sqlite3",
        "jobs.sqlite3-wal",
        "jobs.sqlite3-shm",
        "uploads",
    }

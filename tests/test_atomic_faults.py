"""A model directory survives a save killed at any step, on both paths: the atomic swap
(renameat2 RENAME_EXCHANGE) and the two renames used where a filesystem refuses it (EINVAL, as
NFS does). A save process is SIGKILLed at its k-th filesystem step, for every k; then a load
(or the next save, itself killed at any step) must find a complete model: the old or the new,
never a missing or half one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tiermem.atomic import restore_interrupted, write_dir_atomic

SAVE = r"""
import os, shutil, signal, sys
import tiermem.atomic as atomic

out, version, mode, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
steps = [0]

def step():
    steps[0] += 1
    if steps[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

def around(fn):
    def wrapped(*args, **kwargs):
        step()
        result = fn(*args, **kwargs)
        step()
        return result
    return wrapped

os.replace = around(os.replace)
shutil.rmtree = around(shutil.rmtree)
real_exchange = atomic.exchange
atomic.exchange = around(lambda a, b: False) if mode == "fallback" else around(real_exchange)

def write(d):
    (d / "model.json").write_text(version)
    step()
    (d / "weights.bin").write_bytes(version.encode() * 1000)
    step()

atomic.write_dir_atomic(out, write, marker="model.json")
print(steps[0])
"""


def save(out: Path, version: str, mode: str, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SAVE, str(out), version, mode, str(kill_at)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def complete(out: Path) -> str:
    """The version a complete model at `out` holds (after what a load does first)."""
    restore_interrupted(out)
    version = (out / "model.json").read_text()
    assert (out / "weights.bin").read_bytes() == version.encode() * 1000, "a half-written model"
    return version


def steps_of(mode: str, tmp_path: Path) -> int:
    out = tmp_path / "count" / "m"
    out.parent.mkdir()
    write_dir_atomic(
        out, lambda d: ((d / "model.json").write_text("old"), (d / "weights.bin").write_bytes(b"old" * 1000))
    )
    done = save(out, "new", mode)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_a_save_killed_at_any_step_leaves_a_complete_model(mode: str, tmp_path: Path) -> None:
    steps = steps_of(mode, tmp_path)
    assert steps >= 6
    for first in range(1, steps + 1):
        for second in [0, *range(1, steps + 1)] if mode == "fallback" else [0]:
            out = tmp_path / f"{first}-{second}" / "m"
            out.parent.mkdir()
            write_dir_atomic(
                out,
                lambda d: (
                    (d / "model.json").write_text("old"),
                    (d / "weights.bin").write_bytes(b"old" * 1000),
                ),
            )
            assert save(out, "new", mode, first).returncode != 0
            killed_again = save(out, "newer", mode, second) if second else None
            found = complete(out)
            assert found in ("old", "new", "newer"), (first, second)
            if killed_again is None:  # a load after one kill finds the old or the new model
                assert found in ("old", "new")
            done = save(out, "last", mode)  # and the next whole save leaves one model, no copies
            assert done.returncode == 0, done.stderr
            assert complete(out) == "last" and sorted(p.name for p in out.parent.iterdir()) == ["m"], (
                first,
                second,
            )


def test_loading_a_model_whose_save_was_cut_between_its_renames_restores_it(tmp_path: Path, fitted) -> None:
    """The state a killed two-rename save leaves: the model moved aside as `.m.old-*`, `m`
    missing. Loading `m` puts the complete copy back first."""
    import shutil

    import tiermem

    _, model, _ = fitted
    out = tmp_path / "m"
    shutil.copytree(model, tmp_path / ".m.old-abc123")
    loaded = tiermem.load(out)
    assert out.is_dir() and not (tmp_path / ".m.old-abc123").exists()
    assert loaded.card()["kind"] == "fitted pipeline"

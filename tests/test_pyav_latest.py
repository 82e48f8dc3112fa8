"""The video paths under the newest PyAV (19 and later refuse to read a closed container's
stream), run in another interpreter that has it, since this one's Python gets PyAV 18 from the
registry. `make pyav-latest` builds such an interpreter (Python 3.12, PyAV 19) and runs this."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

LATEST = os.environ.get("TIERMEM_PYAV_LATEST_PYTHON")


@pytest.mark.skipif(not LATEST, reason="TIERMEM_PYAV_LATEST_PYTHON is not set (`make pyav-latest` sets it)")
def test_every_video_path_runs_under_the_newest_pyav(sample_clip_dir: Path) -> None:
    src = Path(__file__).resolve().parents[1] / "src"
    done = subprocess.run(
        [LATEST, str(Path(__file__).with_name("pyav_paths.py")), str(sample_clip_dir)],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("timeline ") == 3, done.stdout

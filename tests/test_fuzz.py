"""Property-based battery: damaged artifacts, odd option values and bad tables never crash.

Each example runs the real command line in-process. Whatever hypothesis throws at it, a run
ends with exit 0 (success), 1 (one-line error) or 2 (a usage error from the option parser),
never with an unhandled exception; a successful run writes only finite scores, and a failed
one writes no output file.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from tiermem.cli import app

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
runner = CliRunner()


def run(*args: object) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, (
        f"{args}: unhandled {type(result.exception).__name__}: {result.exception}\n{result.output}"
    )
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    return result


# -- damaged artifacts -------------------------------------------------------------------------

ARTIFACT_FILES = [
    "pipeline.json",
    "head/head.json",
    "head/weights.safetensors",
    "arrays.npz",
    "distinct/knn.npz",
    "tiers/low.state.npz",
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=5,
)


def _json_paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON document (to replace one value by a value of another type)."""
    paths = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            paths += _json_paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):
            paths += _json_paths(v, prefix + (i,))
    return paths


def _replace(doc: object, path: tuple, value: object) -> object:
    if not path:
        return value
    doc[path[0]] = _replace(doc[path[0]], path[1:], value)  # type: ignore[index]
    return doc


def _nan_arrays(path: Path, draw_fraction: float) -> None:
    """Set a share of every float array of an npz or safetensors file to NaN (or a scale to 0)."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file, save_file

        arrays = load_file(str(path))
    else:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    for name, a in arrays.items():
        if a.dtype.kind == "f" and a.size:
            a = a.copy()
            flat = a.reshape(-1)
            flat[: max(1, int(flat.size * draw_fraction))] = 0.0 if "scale" in name else np.nan
            arrays[name] = a
    if path.suffix == ".safetensors":
        save_file(arrays, str(path))
    else:
        np.savez(path, **arrays)


@given(
    target=st.sampled_from(ARTIFACT_FILES),
    mutation=st.sampled_from(["truncate", "flip", "json_value", "nan"]),
    where=st.floats(0.0, 1.0),
    value=JSON_VALUES,
    data=st.data(),
)
@SETTINGS
def test_a_damaged_artifact_fails_in_one_line_or_scores_finitely(
    fitted,
    memento_root,
    tmp_path_factory,
    target,
    mutation,
    where,
    value,
    data,
) -> None:
    _, model, cache = fitted
    work = tmp_path_factory.mktemp("damaged")
    copy = Path(shutil.copytree(model, work / "model"))
    path = copy / target
    raw = path.read_bytes()
    if mutation == "truncate":
        path.write_bytes(raw[: int(len(raw) * where)])
    elif mutation == "flip":
        buf = bytearray(raw)
        for k in data.draw(st.lists(st.integers(0, len(buf) - 1), min_size=1, max_size=8)):
            buf[k] ^= 0xFF
        path.write_bytes(bytes(buf))
    elif mutation == "json_value" and path.suffix == ".json":
        doc = json.loads(raw)
        key_path = data.draw(st.sampled_from(_json_paths(doc)))
        path.write_text(json.dumps(_replace(doc, key_path, value)))
    elif mutation == "nan" and path.suffix in (".npz", ".safetensors"):
        _nan_arrays(path, max(where, 0.01))
    out = work / "scores.csv"
    clip = memento_root / "videos" / "synthetic_1.mp4"
    result = run("predict", clip, "--model", copy, "--cache", cache, "--out", out, "--json")
    if result.exit_code == 0:
        scores = pd.read_csv(out)["score"].to_numpy()
        assert len(scores) == 1 and np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    else:
        assert not out.exists(), result.output
        assert len([line for line in result.output.splitlines() if line.startswith("error:")]) <= 1


# -- option values and table contents on heads -------------------------------------------------


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """60 videos with 6 features carrying a real signal (seeded), as CSV tables."""
    tmp = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6))
    y = 1 / (1 + np.exp(-(X[:, 0] - 0.5 * X[:, 1])))
    ids = [f"v{i:02d}" for i in range(60)]
    pd.DataFrame(X, columns=[f"f{j}" for j in range(6)]).assign(video_id=ids).to_csv(
        tmp / "feats.csv", index=False
    )
    pd.DataFrame({"video_id": ids, "score": y}).to_csv(tmp / "labels.csv", index=False)
    return {"dir": tmp, "feats": tmp / "feats.csv", "labels": tmp / "labels.csv"}


NUMBERS = st.sampled_from(["-5", "-1", "0", "0.5", "1", "1.5", "2", "3", "1e9", "nan", "inf", "x", ""])


@given(
    epochs=NUMBERS,
    lr=NUMBERS,
    dropout=NUMBERS,
    ensemble=NUMBERS,
    batch=NUMBERS,
    val=NUMBERS,
    stop=NUMBERS,
    hidden=st.sampled_from(["8,4", "4", "-5", "0", "0,4", "a", "", "8,,4"]),
    head=st.sampled_from(["m3s", "ridge"]),
)
@SETTINGS
def test_odd_option_values_are_refused_or_train_a_finite_model(
    tables, tmp_path_factory, epochs, lr, dropout, ensemble, batch, val, stop, hidden, head
) -> None:
    if any(v in ("1e9",) for v in (epochs, ensemble, batch)):
        return  # a billion epochs or seeds is a valid request, just not a quick test
    out = tmp_path_factory.mktemp("opt") / "model"
    args = [
        "train",
        "--labels",
        tables["labels"],
        "--target",
        "score",
        "--block",
        f"t={tables['feats']}",
        "--head",
        head,
        "--out",
        out,
        "--val-fraction",
        val,
    ]
    if head == "m3s":
        args += [
            "--epochs",
            epochs,
            "--lr",
            lr,
            "--dropout",
            dropout,
            "--ensemble",
            ensemble,
            "--batch-size",
            batch,
            "--early-stopping",
            stop,
            "--hidden",
            hidden,
        ]
    result = run(*args)
    if result.exit_code == 0:
        _assert_finite_model(out, tables)
    else:
        assert not out.exists(), result.output


def _refuse_constant(token: str) -> None:
    raise AssertionError(f"{token} is not valid JSON")


def _assert_finite_model(out: Path, tables: dict[str, Path]) -> None:
    from tiermem.blocks import load_block
    from tiermem.model import load_head
    from tiermem.model.experiment import predict_on_blocks

    _, scores = predict_on_blocks(load_head(out), [load_block(tables["feats"], "t")])
    assert np.isfinite(scores).all()


CELLS = st.sampled_from(["nan", "inf", "-inf", "", "x", "1e308", "-0.5", "1.5", "0.3"])


@given(
    label_cells=st.lists(st.tuples(st.integers(0, 59), CELLS), max_size=4),
    feature_cells=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 5), CELLS), max_size=4),
    duplicate=st.booleans(),
    drop_rows=st.integers(0, 60),
)
@SETTINGS
def test_bad_table_contents_are_refused_or_train_a_finite_model(
    tables, tmp_path_factory, label_cells, feature_cells, duplicate, drop_rows
) -> None:
    tmp = tmp_path_factory.mktemp("cells")
    labels = pd.read_csv(tables["labels"], dtype=str)
    feats = pd.read_csv(tables["feats"], dtype=str)
    for row, cell in label_cells:
        labels.loc[row, "score"] = cell
    for row, col, cell in feature_cells:
        feats.loc[row, f"f{col}"] = cell
    if duplicate:
        labels = pd.concat([labels, labels.iloc[:1]])
    labels = labels.iloc[: max(0, len(labels) - drop_rows)]
    labels.to_csv(tmp / "labels.csv", index=False)
    feats.to_csv(tmp / "feats.csv", index=False)
    out = tmp / "model"
    result = run(
        "train",
        "--labels",
        tmp / "labels.csv",
        "--target",
        "score",
        "--block",
        f"t={tmp / 'feats.csv'}",
        "--head",
        "ridge",
        "--out",
        out,
    )
    if result.exit_code == 0:
        _assert_finite_model(out, {"feats": tmp / "feats.csv"})
    else:
        assert not out.exists(), result.output
    scores = tmp / "predictions.csv"
    labels.rename(columns={"score": "pred"}).to_csv(scores, index=False)
    result = run(
        "evaluate",
        "--predictions",
        scores,
        "--score-column",
        "pred",
        "--labels",
        tmp / "labels.csv",
        "--target",
        "score",
        "--json",
        "--resamples",
        "20",
    )
    if result.exit_code == 0:
        doc = json.loads(result.stdout, parse_constant=_refuse_constant)  # strict JSON: no NaN tokens
        assert all(v is None or math.isfinite(v) for v in doc.values() if isinstance(v, float))

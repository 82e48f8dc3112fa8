"""Read a pickle that should hold only lists of names, without ever running its code.

M3-S ships its VideoMem split as `train_test_split_videomem.pkl`, a pickled pair
(train names, validation names). A pickle can name any importable callable and call it while
loading, so `pickle.load` on a downloaded file is code execution. Here the byte stream is
first parsed with `pickletools.genops` (a parser, it builds nothing) and refused unless every
opcode belongs to the list/tuple/dict/str/int/bool/None subset; only then is it loaded, by
an Unpickler whose `find_class` and `persistent_load` always refuse, as a second wall.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path

from tiermem.errors import DatasetError

#: Opcodes that build only containers, text, integers, booleans and None (plus framing and memo).
SAFE_OPCODES = frozenset(
    {
        "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
        "EMPTY_LIST", "APPEND", "APPENDS", "LIST",
        "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
        "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS",
        "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
        "STRING", "BINSTRING", "SHORT_BINSTRING",
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
        "NONE", "NEWTRUE", "NEWFALSE",
        "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",
    }
)  # fmt: skip
#: A split file is a few hundred kB; refuse anything far larger before parsing it.
MAX_BYTES = 64 << 20


class _RefuseObjects(pickle.Unpickler):
    """An Unpickler that cannot import or call anything."""

    def find_class(self, module: str, name: str):  # noqa: ANN201 - never returns
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")

    def persistent_load(self, pid: object):  # noqa: ANN201 - never returns
        raise pickle.UnpicklingError("refused a persistent id")


def load_plain_pickle(path: str | Path) -> object:
    """Load a pickle made only of list/tuple/dict/str/int/bool/None; refuse anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    if len(data) > MAX_BYTES:
        raise DatasetError(f"{path}: {len(data)} bytes, too large for a split file (refused)")
    try:
        for opcode, _arg, pos in pickletools.genops(data):
            if opcode.name not in SAFE_OPCODES:
                raise DatasetError(
                    f"{path}: refused: byte {pos} holds pickle opcode {opcode.name}, which would build or "
                    "call an object; only lists of names are read from a split pickle"
                )
    except DatasetError:
        raise
    except Exception as exc:  # genops raises ValueError/struct errors on malformed streams
        raise DatasetError(f"{path}: not a readable pickle ({exc})") from None
    try:
        return _RefuseObjects(io.BytesIO(data), encoding="utf-8").load()
    except Exception as exc:  # the safe subset can still be malformed (e.g. an unhashable key)
        raise DatasetError(f"{path}: not a readable list-of-names pickle ({exc})") from None


def read_split_pickle(path: str | Path, names: tuple[str, ...] = ("train", "val")) -> dict[str, list[str]]:
    """Split name -> video names, from a pickled sequence of name lists (M3-S's order: train, val)
    or a pickled dict of name lists. Anything else (arrays, objects, numbers) is refused."""
    path = Path(path)
    obj = load_plain_pickle(path)
    if isinstance(obj, dict):
        parts = {str(k): v for k, v in obj.items()}
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(x, (list, tuple)) for x in obj):
        if len(obj) > len(names):
            raise DatasetError(
                f"{path}: {len(obj)} name lists, expected at most {len(names)} ({', '.join(names)})"
            )
        parts = dict(zip(names, obj))
    else:
        raise DatasetError(
            f"{path}: expected a tuple of name lists ({', '.join(names)}), got {type(obj).__name__}"
        )
    out: dict[str, list[str]] = {}
    for split, seq in parts.items():
        if not isinstance(seq, (list, tuple)):
            raise DatasetError(f"{path}: split {split!r} is a {type(seq).__name__}, not a list of names")
        for x in seq:
            if not isinstance(x, str) or not x.strip():
                raise DatasetError(f"{path}: split {split!r} holds {x!r}, not a video name")
        out[split] = [x.strip() for x in seq]
    return out

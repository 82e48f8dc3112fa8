"""The shape of the package: small modules, an import graph without cycles, light imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tiermem"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def import_graph(type_only: bool = True) -> dict[str, set[str]]:
    """Module -> tiermem modules it imports anywhere: in functions too, and in TYPE_CHECKING
    blocks unless `type_only` is False (imports made for annotations alone)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]

        def visit(node: ast.AST) -> None:
            if not type_only and isinstance(node, ast.If) and _is_type_checking(node):
                for child in node.orelse:
                    visit(child)
                return
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1]
                        + ([base] if base else [])
                    )
                if base.startswith("tiermem"):
                    for alias in node.names:
                        sub = f"{base}.{alias.name}"
                        edges.add(sub if sub in modules else base)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith("tiermem"))
            for child in ast.iter_child_nodes(node):
                visit(child)

        visit(ast.parse(path.read_text()))
        # Importing a.b.c runs a/__init__ and a/b/__init__ first: an import of a submodule is an
        # import of every package above it too.
        edges |= {".".join(e.split(".")[:k]) for e in list(edges) for k in range(2, e.count(".") + 1)}
        edges.discard(name)
        graph[name] = {e for e in edges if e in modules and not name.startswith(e + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40 and graph["tiermem.pipeline"]  # the graph was really read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_type_only_imports_are_walked() -> None:
    with_types, without = import_graph(), import_graph(type_only=False)
    assert all(without[m] <= with_types[m] for m in without)
    assert any(without[m] < with_types[m] for m in without)  # some module imports for annotations alone


def _assigned_attributes(tree: ast.AST) -> list[tuple[str, str, int]]:
    """(object name, attribute, line) of every ``name.attribute = ...`` in a module."""
    found = []
    for node in ast.walk(tree):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                found.append((target.value.id, target.attr, target.lineno))
    return found


def test_only_the_pipeline_sets_its_attributes() -> None:
    """A pipeline's fitted state crosses modules as a `PipelineState` (`Pipeline.state`,
    `Pipeline.from_state`): no other module writes a pipeline's attributes."""
    owner = SRC / "pipeline.py"
    own = {
        attr
        for name, attr, _ in _assigned_attributes(ast.parse(owner.read_text()))
        if name in ("self", "pipe")
    }
    assert {"head_", "layout_", "distinct_", "evaluation"} <= own
    writes = []
    for path in SRC.rglob("*.py"):
        if path == owner:
            continue
        assigned = _assigned_attributes(ast.parse(path.read_text()))
        its_own = {
            attr for name, attr, _ in assigned if name == "self"
        }  # another class's attribute of that name
        writes += [
            f"{path.relative_to(SRC)}:{line} {name}.{attr}"
            for name, attr, line in assigned
            if name not in ("self", "cls") and attr in own - its_own
        ]
    assert not writes


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_over_450_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450
    }
    assert not long


def test_the_ridge_head_and_the_package_root_import_without_torch() -> None:
    code = (
        "import sys, tiermem, tiermem.model.ridge, tiermem.datasets, tiermem.inputs; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_command_line_starts_without_heavy_libraries() -> None:
    """`tiermem --version` or `info` must not pay for torch, scikit-learn or pandas; the
    registries list every choice in `--help` without importing what they name."""
    code = (
        "import sys, tiermem.cli; heavy = [m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_only_the_command_line_and_the_service_know_rich() -> None:
    """Library code reports progress and notes through a `Run`'s callbacks; drawing them is the
    terminal's business (cli/) or the service's (serve/)."""
    outside = []
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).parts[0] in ("cli", "serve"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "rich" or n.startswith("rich.") for n in names):
                outside.append(str(path.relative_to(SRC)))
    assert not outside, outside
    assert any(p.parts[-2] == "cli" for p in SRC.rglob("progress.py"))  # the terminal's side exists


def test_the_package_namespace_shows_only_what_it_offers() -> None:
    import tiermem

    shown = [n for n in dir(tiermem) if not n.startswith("__")]
    assert "load" in shown and "Run" in shown
    for leaked in ("annotations", "lazy", "lazy_exports", "_EXPORTS"):
        assert leaked not in shown
    assert all(getattr(tiermem, n) is not None for n in shown)  # every name shown resolves

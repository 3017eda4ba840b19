"""The package is layered: an import goes only down the layers, never up, never in a circle.

Every import counts, also one inside a function (that is how cycles hide). The layers, top first:

    cli                                   argument parsing -> library calls
    search, validate, export              what a user runs on a study
    store                                 the stored study they all read: storage, record keys, results
    report                                front data, tables, plots (reads no study)
    profiling, train, energy_model, paper measuring, training, modelling
    models, data, energy, cost            networks, datasets, meters, counting
    config, errors, paths, console, ...   the vocabulary everything shares
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "e2gcsearch"
LAYERS: tuple[tuple[str, ...], ...] = (  # bottom first
    (
        "config",
        "errors",
        "checks",
        "paths",
        "console",
        "devices",
        "metrics",
        "stats",
        "paired",
        "pareto",
        "fidelity",
        "fidelity_notes",
        "version",
    ),
    ("models", "data", "energy", "cost"),
    ("profiling", "train", "energy_model", "paper"),
    ("report",),
    ("store",),
    ("search", "validate", "export"),
    ("cli", "__main__"),
)
RANK = {room: rank for rank, rooms in enumerate(LAYERS) for room in rooms}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports (resolved to the longest known module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative enough for a package)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_room_has_a_layer():
    rooms = {_room(name) for name in _modules()} - {""}
    assert rooms - set(RANK) == set(), "give each new module or package a layer in LAYERS above"


def test_no_import_goes_up_a_layer():
    upward = []
    for module, targets in _graph().items():
        room = _room(module)
        if not room:  # the package root re-exports the public API from every layer
            continue
        for target in targets:
            if target == "e2gcsearch":  # the package root is the public facade; only cli may use it
                if room != "cli":
                    upward.append(f"{module} -> e2gcsearch (import from e2gcsearch.version instead)")
                continue
            if RANK[_room(target)] > RANK[room]:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_no_import_cycle_between_packages():
    rooms: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        rooms.setdefault(_room(module), set()).update(_room(t) for t in targets if _room(t) != _room(module))
    assert _cycles(rooms) == []


@pytest.mark.parametrize(
    "edges, expected",
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert _cycles(edges) == expected

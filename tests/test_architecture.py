"""The house rules of the code itself: each sub-package imports only what its docstring allows, no
module imports itself in a circle (function-level imports count too), and no module or function
outgrows the limits (400 / 100 lines) that keep a piece of logic readable in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "maskdepth"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 100
# Sub-package -> the maskdepth sub-packages it must not import (the layers above it).
FORBIDDEN = {
    "align": {"model", "data", "hub", "training", "predict", "compare", "ui"},
    "model": {"hub", "training", "predict", "compare", "ui", "data"},
    "data": {"training", "predict", "compare", "ui", "hub"},
    "hub": {"training", "predict", "compare", "ui"},
    "predict": {"training", "compare", "ui"},
    "training": {"compare", "ui"},
    "compare": {"ui"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The maskdepth modules ``path`` imports anywhere in its body (resolved to modules we have)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:  # "maskdepth.x.Name" -> "maskdepth.x"
                name = name.rpartition(".")[0]
            if name.startswith("maskdepth."):
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    # A package's __init__ is not an edge target: importing maskdepth.x.y runs it, but the lazy
    # re-exports there import nothing at import time, so the edge that matters is to the module.
    return {name: imports_of(path, known) - {name} for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles() -> None:
    edges = {k: {w for w in v if not modules()[w].name == "__init__.py"} for k, v in graph().items()}
    assert cycles(edges) == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_sub_packages_import_only_the_layers_below(package: str) -> None:
    bad = {
        (name, target)
        for name, targets in graph().items()
        if name.startswith(f"maskdepth.{package}.") or name == f"maskdepth.{package}"
        for target in targets
        if target.split(".")[1] in FORBIDDEN[package]
    }
    assert bad == set()


def test_modules_and_functions_stay_short() -> None:
    long_modules, long_functions = [], []
    for path in modules().values():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(f"{path.name}: {len(text.splitlines())}")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.name}:{node.name}: {length}")
    assert long_modules == [] and long_functions == []


def test_the_checker_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

"""No import circles among edgefer's modules, counting imports inside functions and under TYPE_CHECKING too.

A function-level import only hides a circle until that function runs (and makes the
import order matter); the scan reads every ``import`` statement in the source, wherever
it is, so the layering ``train -> convert -> runtime`` and each package's own layers stay
one-directional.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import pytest

    tomllib = pytest.importorskip("tomli")


def package_roots(root: Path) -> dict[str, Path]:
    """Top-level import name -> folder, from pyproject's ``package-dir`` (``edgefer.train`` -> ``train/``)."""
    dirs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {name: root / folder for name, folder in dirs.items()}


def module_files(roots: dict[str, Path]) -> dict[str, Path]:
    """Every module's dotted name -> its file (packages by their ``__init__.py``)."""
    modules: dict[str, Path] = {}
    for package, folder in sorted(roots.items()):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules.setdefault(".".join([package, *parts]), path)
    return modules


def import_graph(modules: dict[str, Path], prefix: str = "edgefer") -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its source (functions and TYPE_CHECKING included)."""

    def known(name: str) -> str | None:
        while name and name not in modules:  # `edgefer.runtime.detect.Box` -> `edgefer.runtime.detect`
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        base = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    anchor = base
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    source = f"{anchor}.{source}" if source else anchor
                # `from . import x` imports the submodule x where there is one
                names = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            for name in names:
                target = known(name) if name == prefix or name.startswith(prefix + ".") else None
                if target and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_scan_finds_a_circle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from . import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import thing\n")
    graph = import_graph(module_files({"pkg": pkg}), prefix="pkg")
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_edgefer_has_no_import_circles():
    modules = module_files(package_roots(ROOT))
    assert {"edgefer.runtime.detect", "edgefer.train.trainer", "edgefer.convert.run"} <= set(modules)
    graph = import_graph(modules)
    found = cycles(graph)
    described = ["; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(c)))}" for m in c) for c in found]
    assert not found, "import circles:\n" + "\n".join(described)

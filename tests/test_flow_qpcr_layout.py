"""The shape of the code the next engineer reads: no import cycle anywhere in ckpk, and
modules and functions small enough to follow, in every package."""

from __future__ import annotations

import ast
from pathlib import Path

import ckpk

SRC = Path(ckpk.__file__).resolve().parent
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
# The parameter registry is a flat table of declarations, a few lines over ("about 450").
MODULE_LINE_EXCEPTIONS = {"pk/parameters.py": 470}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ckpk modules ``path`` imports, deferred imports inside functions included."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from package import submodule`` depends on the submodule itself.
            found |= {
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            }
    return (found & modules) - {name}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path of module names; empty when there is none."""
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> list[str]:
        if module in trail:
            return [*trail[trail.index(module) :], module]
        if module in done:
            return []
        for imported in sorted(graph[module]):
            cycle = visit(imported, [*trail, module])
            if cycle:
                return cycle
        done.add(module)
        return []

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return []


def test_no_import_cycle_in_ckpk():
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: _imports(path, set(paths)) for name, path in paths.items()}
    assert _cycle(graph) == []


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def _sized_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_modules_are_at_most_450_lines():
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text().splitlines()) for p in _sized_files()}
    assert len(sizes) > 100
    too_long = {
        name: n
        for name, n in sizes.items()
        if n > MODULE_LINE_EXCEPTIONS.get(name, MAX_MODULE_LINES)
    }
    assert too_long == {}


def test_functions_are_at_most_60_lines():
    long = {}
    for path in _sized_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC).as_posix()}:{node.name}"] = lines
    assert long == {}

"""The package follows the course (ARCHITECTURE.md): layers, imports at the top, no cycles, small units.

The map from module to layer is the table in ARCHITECTURE.md, read here; every module must appear in it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dcnn_helpers"
GROUND, TOOLS = "ground floor", "tools"
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 80, 700


def architecture_table() -> dict[str, str]:
    """Module (dotted, relative to dcnn_helpers) -> layer, from ARCHITECTURE.md."""
    rows = re.findall(r"^\| `([\w.]+)` \| (ground floor|\d\d|tools) \|", (ROOT / "ARCHITECTURE.md").read_text(), re.M)
    return dict(rows)


def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name ('' for the package, 'tools' for the tools package)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = package_modules()
TABLE = architecture_table()


def layer_of(module: str) -> str:
    if module == "":
        return GROUND
    if module == "tools" or module.startswith("tools."):
        return TOOLS
    return TABLE[module]


def imported_modules(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package modules an import statement of ``module`` names ('' for the package itself)."""
    if isinstance(node, ast.Import):
        return [a.name.removeprefix("dcnn_helpers").lstrip(".") for a in node.names
                if a.name == "dcnn_helpers" or a.name.startswith("dcnn_helpers.")]
    if node.level:
        is_package = MODULES[module].name == "__init__.py"
        parts = module.split(".") if module else []
        base = parts if is_package else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    elif node.module == "dcnn_helpers" or (node.module or "").startswith("dcnn_helpers."):
        source = node.module.removeprefix("dcnn_helpers").lstrip(".")
    else:
        return []
    found = []
    for alias in node.names:
        candidate = f"{source}.{alias.name}" if source else alias.name
        found.append(candidate if candidate in MODULES else source)
    return found


def imports(module: str) -> list[tuple[str, bool]]:
    """(imported package module, whether the import stands at the top of the file) for every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    first_definition = min((n.lineno for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))),
                           default=10**9)
    definitions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    nested = {id(inner) for d in definitions for inner in ast.walk(d) if inner is not d}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            at_top = id(node) not in nested and node.lineno < first_definition
            found += [(target, at_top) for target in imported_modules(module, node)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle, each once, starting and ending at its smallest module (depth-first search)."""
    found, seen = [], set()

    def visit(path: list[str]) -> None:
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == path[0] and tuple(path) not in seen:
                seen.add(tuple(path))
                found.append(path + [nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle is found from its smallest module only
                visit(path + [nxt])

    for module in sorted(graph):
        visit([module])
    return found


def violations() -> set[str]:
    found, graph = set(), {}
    for module in MODULES:
        here = layer_of(module)
        for target, at_top in imports(module):
            if target == module:
                continue
            graph.setdefault(module, set()).add(target)
            there = layer_of(target)
            if not at_top:
                found.add(f"{module or 'dcnn_helpers'} imports {target or 'dcnn_helpers'} inside a function")
            if there == TOOLS and here != TOOLS:
                found.add(f"{module} ({here}) imports the tool {target}")
            elif here == GROUND and there != GROUND:
                found.add(f"{module} (ground floor) imports {target} ({there})")
            elif here not in (GROUND, TOOLS) and there not in (GROUND, TOOLS) and int(there) > int(here):
                found.add(f"{module} ({here}) imports {target} ({there}), a later notebook")
    found |= {"cycle: " + " -> ".join(c) for c in cycles(graph)}
    for module in MODULES:
        layer = layer_of(module)
        if layer in (GROUND, TOOLS):
            continue
        said = re.search(r"Introduced in notebook (\d\d)", ast.get_docstring(ast.parse(MODULES[module].read_text())) or "")
        if not said or said.group(1) != layer:
            found.add(f"{module}: docstring says notebook {said.group(1) if said else 'nothing'}, "
                      f"ARCHITECTURE.md says {layer}")
    return found


def test_every_module_is_on_the_map_and_every_entry_exists():
    unmapped = [m for m in MODULES if m not in ("", "tools") and m not in TABLE]
    assert not unmapped, f"add these modules to the table in ARCHITECTURE.md: {unmapped}"
    missing = sorted(set(TABLE) - set(MODULES))
    assert not missing, f"ARCHITECTURE.md lists modules that do not exist: {missing}"


def test_imports_follow_the_course_order_with_no_cycles():
    found = sorted(violations())
    assert not found, "imports against ARCHITECTURE.md:\n" + "\n".join(found)


def oversized_units() -> set[str]:
    found = set()
    for path in MODULES.values():
        source = path.read_text()
        name = path.relative_to(PACKAGE).as_posix()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.add(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.add(f"{name.removesuffix('.py').replace('/', '.')}.{node.name}: {length} lines")
    return found


def test_functions_and_modules_are_short_enough_to_read_whole():
    found = sorted(oversized_units())
    assert not found, f"split these (functions <= {MAX_FUNCTION_LINES} lines, modules <= {MAX_MODULE_LINES}): {found}"


# --- the checker itself ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c", "a"]]),
    ({"a": {"b"}, "b": {"c"}}, []),
])
def test_cycles_are_found(graph, expected):
    assert cycles(graph) == expected


def test_imports_are_resolved_and_placed(tmp_path, monkeypatch):
    source = ("from __future__ import annotations\nfrom . import config, regions\nfrom .tools import nbclean\n"
              "import dcnn_helpers.depth\n\ndef f():\n    from . import llr\n")
    path = tmp_path / "fake.py"
    path.write_text(source)
    monkeypatch.setitem(MODULES, "fake", path)
    assert imports("fake") == [("config", True), ("regions", True), ("tools.nbclean", True), ("depth", True),
                               ("llr", False)]

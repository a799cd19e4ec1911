"""The public surface: every ``dcnn_helpers`` name a notebook uses is exported (in its module's ``__all__``), and
every public module declares ``__all__`` with names that exist. A rename fails here, not halfway through a notebook.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
from pathlib import Path

import pytest

import dcnn_helpers

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

def code_of(notebook: Path) -> ast.Module:
    """The notebook's code cells as one module (IPython magics and shell lines left out)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    lines = [line for cell in cells if cell["cell_type"] == "code"
             for line in "".join(cell["source"]).splitlines() + [""] if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def used_names(tree: ast.Module) -> set[tuple[str, str]]:
    """(module, name) for ``from dcnn_helpers import m`` then ``m.name``, and ``from dcnn_helpers.m import name``."""
    aliases, used = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "dcnn_helpers":
            aliases.update({a.asname or a.name: a.name for a in node.names})
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dcnn_helpers."):
            used |= {(node.module.removeprefix("dcnn_helpers."), a.name) for a in node.names}
        elif isinstance(node, ast.Import):
            aliases.update({a.asname: a.name.removeprefix("dcnn_helpers.") for a in node.names
                            if a.asname and a.name.startswith("dcnn_helpers.")})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.add((aliases[node.value.id], node.attr))
    return used


def public_modules() -> list[str]:
    found = []
    for info in pkgutil.walk_packages(dcnn_helpers.__path__, "dcnn_helpers."):
        parts = info.name.split(".")[1:]
        if not info.ispkg and not any(part.startswith("_") for part in parts):
            found.append(".".join(parts))
    return sorted(found)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_name_a_notebook_uses_is_exported(notebook):
    missing = []
    for module, name in sorted(used_names(code_of(notebook))):
        exported = getattr(importlib.import_module(f"dcnn_helpers.{module}"), "__all__", ())
        if name not in exported:
            missing.append(f"{module}.{name}")
    assert not missing, f"{notebook.name} uses names its modules do not export: {missing}"


@pytest.mark.parametrize("module", public_modules())
def test_public_modules_declare_what_they_export(module):
    imported = importlib.import_module(f"dcnn_helpers.{module}")
    assert hasattr(imported, "__all__"), f"dcnn_helpers.{module} has no __all__"
    absent = [name for name in imported.__all__ if not hasattr(imported, name)]
    assert not absent, f"dcnn_helpers.{module}.__all__ names what it does not define: {absent}"
    assert len(set(imported.__all__)) == len(imported.__all__), "a name is listed twice"


def test_the_scanner_finds_both_import_forms():
    tree = ast.parse("from dcnn_helpers import regions, depth as d\nfrom dcnn_helpers.config import sizes\n"
                     "regions.pieces_1d(net)\nd.mlp([1, 1])\nx.regions.y\n")
    assert used_names(tree) == {("regions", "pieces_1d"), ("depth", "mlp"), ("config", "sizes")}


def test_notebooks_use_the_course_modules():
    used = set().union(*(used_names(code_of(nb)) for nb in NOTEBOOKS))
    assert {module for module, _ in used} >= {"config", "plotting", "regions", "depth", "dcnn", "llr", "merge_run"}

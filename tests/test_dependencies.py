"""Everything the package, the notebooks and the tests import is declared in pyproject.toml.

The imports are read with ``ast`` (top-level and inside functions), mapped to distributions with
``importlib.metadata.packages_distributions()`` and looked up in the group each part of the project may use:

- the package's modules and the notebooks: the run-time ``dependencies`` (what Colab and Binder must have);
- the maintainer tools (``dcnn_helpers/tools/`` and the tool modules below): run time plus the ``tools`` extra;
- the tests: run time plus the ``lab``, ``test`` and ``tools`` extras (what ``make test`` installs), and
  ``browser`` for ``tests/browser``.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib  # Python >= 3.11
except ModuleNotFoundError:  # Python 3.10: the backport pyproject.toml declares for it
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "dcnn_helpers"
TOOL_MODULES = {"tools", "workshop", "colab", "nbclean"}  # the subpackage, and tool modules that predate it
SHELL_LINE = re.compile(r"^\s*[%!]")  # IPython magics and shell escapes in notebook cells


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _groups() -> dict[str, set[str]]:
    """Declared distribution names (normalised) by group: "runtime" and one per extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"runtime": project["dependencies"], **project["optional-dependencies"]}
    return {group: {_normal(Requirement(r).name) for r in reqs} for group, reqs in groups.items()}


def _imported_modules(source: str) -> set[str]:
    """Top-level names of the absolute imports in ``source``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party(names: set[str], local: set[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n != PACKAGE and n not in local} - {"tomllib"}


@functools.cache
def _providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    """Distributions that provide ``module``; its own name when none is installed (then it must be declared so)."""
    return {_normal(d) for d in _providers().get(module, [module])}


def _undeclared(imports: dict[str, set[str]], allowed: set[str]) -> dict[str, list[str]]:
    """For each importing file, the modules no distribution in ``allowed`` provides."""
    missing = {}
    for where, modules in imports.items():
        bad = sorted(m for m in modules if not _distributions(m) & allowed)
        if bad:
            missing[where] = bad
    return missing


def _python_imports(files) -> dict[str, set[str]]:
    result = {}
    for path in files:
        local = {p.stem for p in path.parent.glob("*.py")} | {p.name for p in path.parent.iterdir() if p.is_dir()}
        result[str(path.relative_to(ROOT))] = _third_party(_imported_modules(path.read_text(encoding="utf-8")), local)
    return result


def _notebook_imports() -> dict[str, set[str]]:
    result = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join(
            "\n".join(line for line in "".join(c["source"]).splitlines() if not SHELL_LINE.match(line))
            for c in cells
            if c["cell_type"] == "code"
        )
        result[path.name] = _third_party(_imported_modules(code), set())
    return result


def _is_tool(path: Path) -> bool:
    parts = path.relative_to(ROOT / PACKAGE).parts
    return parts[0] in TOOL_MODULES or Path(parts[0]).stem in TOOL_MODULES


PACKAGE_FILES = sorted((ROOT / PACKAGE).rglob("*.py"))


def test_the_package_imports_only_run_time_dependencies():
    groups = _groups()
    imports = _python_imports(p for p in PACKAGE_FILES if not _is_tool(p))
    assert imports, "no module found"
    assert _undeclared(imports, groups["runtime"]) == {}, "declare these under [project] dependencies"


def test_maintainer_tools_import_run_time_or_tools_dependencies():
    groups = _groups()
    imports = _python_imports(p for p in PACKAGE_FILES if _is_tool(p))
    assert _undeclared(imports, groups["runtime"] | groups["tools"]) == {}, "declare these in the tools extra"


def test_notebooks_import_only_run_time_dependencies():
    imports = _notebook_imports()
    assert len(imports) >= 8 and "ipywidgets" in set().union(*imports.values())
    assert _undeclared(imports, _groups()["runtime"]) == {}, "hosted notebooks (Colab, Binder) would lack these"


def test_tests_import_what_make_test_installs():
    groups = _groups()
    installed = groups["runtime"] | groups["lab"] | groups["test"] | groups["tools"]
    files = [ROOT / "conftest.py", *sorted((ROOT / "tests").glob("*.py"))]
    assert _undeclared(_python_imports(files), installed) == {}
    browser = sorted((ROOT / "tests" / "browser").glob("*.py"))
    assert _undeclared(_python_imports(browser), installed | groups["browser"]) == {}


def test_an_undeclared_import_is_caught():
    """The check itself can fail: pandas is declared at run time, an unknown module is not."""
    imports = {"example.py": _third_party(_imported_modules("import pandas\nfrom surely_not_declared import x"), set())}
    assert _undeclared(imports, _groups()["runtime"]) == {"example.py": ["surely_not_declared"]}


@pytest.mark.parametrize("module, distribution", [("IPython", "ipython"), ("matplotlib_inline", "matplotlib-inline")])
def test_import_names_map_to_distribution_names(module, distribution):
    assert distribution in _distributions(module)

"""pyproject.toml and environment.yml describe the same environment."""

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

try:
    import tomllib  # Python >= 3.11
except ModuleNotFoundError:  # Python 3.10: the backport pyproject.toml declares for it
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
CONDA_EXTRAS = ("lab", "test", "tools")  # the extras `make lab` installs; not `browser` (Playwright)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in CONDA_EXTRAS for r in project["optional-dependencies"][extra]]
    parsed = (Requirement(r) for r in reqs)  # conda has no environment markers: those are left out here
    return {_normal(req.name): str(req.specifier) for req in parsed}


def _conda_requirements() -> dict[str, str]:
    reqs = {}
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        match = re.fullmatch(r"  - ([A-Za-z0-9_.-]+)\s*(.*)", line)
        if in_deps and match and match.group(1) not in {"python", "pip"}:
            name, spec = match.groups()
            reqs[_normal(CONDA_NAMES.get(name, name))] = str(SpecifierSet(spec))
    return reqs


def test_conda_and_pip_list_the_same_packages_and_versions():
    assert _conda_requirements() == _pyproject_requirements()


def test_conda_env_installs_the_package_from_the_checkout():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^name: dcnn-course$", text, re.M)
    assert "conda-forge" in text
    assert re.search(r"^\s+- -e \.$", text, re.M)


def test_python_floor_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    assert "  - python>=3.10" in (ROOT / "environment.yml").read_text().splitlines()

"""pyproject.toml and environment.yml describe the same environment."""

import re
import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["test"]
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", r).groups() for r in reqs)


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
            reqs[CONDA_NAMES.get(name, name)] = spec
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

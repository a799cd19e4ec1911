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


def test_binder_installs_the_run_time_dependencies_then_the_package():
    """.binder/ takes precedence over environment.yml (whose `-e .` needs the checkout before Binder copies it)."""
    binder = ROOT / ".binder"
    lines = [l.strip() for l in (binder / "requirements.txt").read_text().splitlines()]
    names = {_normal(l) for l in lines if l and not l.startswith(("#", "-"))}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python = re.fullmatch(r"python-(3\.\d+)", (binder / "runtime.txt").read_text().strip()).group(1)
    runtime = (Requirement(r) for r in project["dependencies"])
    assert names == {_normal(r.name) for r in runtime if not r.marker or r.marker.evaluate({"python_version": python})}
    assert "-c ../requirements/lock.txt" in lines and "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "python -m pip install --no-deps -e ." in (binder / "postBuild").read_text()
    start = (binder / "start").read_text()
    assert 'DCNN_PROFILE="${DCNN_PROFILE:-smoke}"' in start and start.rstrip().endswith('exec "$@"')
    assert all((binder / name).stat().st_mode & 0o111 for name in ("postBuild", "start")), "must be executable"


def test_lock_pins_every_declared_package():
    """requirements/lock.txt (make lock) pins each package pyproject.toml names, within its declared floor."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pins.setdefault(_normal(match.group(1)), []).append(match.group(2))
    declared = project["dependencies"] + [r for reqs in project["optional-dependencies"].values() for r in reqs]
    for req in map(Requirement, declared):
        if req.marker and not req.marker.evaluate({"python_version": "3.10"}) and _normal(req.name) not in pins:
            continue
        assert _normal(req.name) in pins, f"{req.name} is not in the lock: run make lock"
        assert all(req.specifier.contains(v) for v in pins[_normal(req.name)]), f"{req.name}: {pins[_normal(req.name)]}"


def _make_dry_run(tmp_path, *args: str) -> str:
    """The commands `make setup` would run for a fresh environment in ``tmp_path`` (make -n runs nothing)."""
    import subprocess

    result = subprocess.run(["make", "-n", "setup", f"VENV={tmp_path / 'venv'}", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def test_make_lab_installs_with_the_lock_unless_told_otherwise(tmp_path):
    locked = _make_dry_run(tmp_path)
    assert '--constraint requirements/lock.txt -e ".[lab,test,tools]"' in locked and "--no-index" not in locked
    assert "--constraint" not in _make_dry_run(tmp_path, "LOCK=")
    offline = _make_dry_run(tmp_path, "WHEELHOUSE=/media/wheels")
    assert "--no-index --find-links /media/wheels" in offline and "--upgrade pip" not in offline
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in _make_dry_run(tmp_path, "TORCH=cpu")

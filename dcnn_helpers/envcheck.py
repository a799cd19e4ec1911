"""Environment check: ``python -m dcnn_helpers.envcheck`` prints [OK]/[FAIL] per requirement, the device and the data.

Introduced in notebook 00 (setup and tour). Please paste its output into every bug report.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from . import config, data

__all__ = ["Check", "requirements", "check_requirement", "check_device", "check_data", "run_checks", "main"]

DISTRIBUTION = "dcnn-helpers"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'OK' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def requirements(extras: tuple[str, ...] = ("test",)) -> list[Requirement]:
    """The package's requirements (with the given extras), from its installed metadata or else ``pyproject.toml``."""
    if isinstance(extras, str) or not all(isinstance(extra, str) for extra in extras):
        raise TypeError(f"extras must be a tuple of extra names such as ('test',), got {extras!r}")
    try:
        raw = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raw = _requirements_from_pyproject(config.REPO_ROOT / "pyproject.toml")
    wanted = []
    for text in raw:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in ("",) + extras):
            wanted.append(req)
    return wanted


def _requirements_from_pyproject(path: Path) -> list[str]:
    import tomllib  # Python >= 3.11; installed packages (the usual case) never get here

    project = tomllib.loads(path.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra, items in project.get("optional-dependencies", {}).items():
        reqs += [f'{item}; extra == "{extra}"' for item in items]
    return reqs


def check_requirement(req: Requirement) -> Check:
    """Is ``req`` installed in a version its specifier allows?"""
    if not isinstance(req, Requirement):
        raise TypeError(f"req must be a packaging Requirement, got {type(req).__name__}")
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return Check(req.name, False, f"not installed (need {req.specifier or 'any version'})")
    ok = req.specifier.contains(version, prereleases=True)
    return Check(req.name, ok, f"{version}" + ("" if ok else f" (need {req.specifier})"))


def check_device() -> Check:
    """Which device the course will use (a CPU is fine: every notebook runs in the laptop profile)."""
    try:
        dev = config.device()
    except RuntimeError as exc:
        return Check("device", False, str(exc))
    return Check("device", True, f"{dev} (profile {config.profile()})")


def check_data() -> list[Check]:
    """Is full CIFAR-10 in the data folder, and is the small committed sample there?"""
    folder = config.data_dir() / data.CIFAR10_FOLDER
    problems = data.cache_problems(folder)
    full = Check(
        "CIFAR-10",
        not problems,
        f"verified in {folder}"
        if not problems
        else f"not ready in {folder}: {problems[0]} (notebook 07 downloads it; offline, copy the files there or set "
        "DCNN_DATA)",
    )
    sample = data.sample_path()
    return [full, Check("CIFAR-10 sample", sample.exists(), str(sample) if sample.exists() else f"missing: {sample}")]


def run_checks() -> list[Check]:
    """All checks, in report order."""
    checks = [Check("python", sys.version_info >= (3, 10), sys.version.split()[0] + " (need >= 3.10)")]
    checks += [check_requirement(req) for req in requirements()]
    checks.append(check_device())
    checks += check_data()
    return checks


def main() -> int:
    """Print the report; exit status 1 when a required package or the device fails (data is only informative)."""
    checks = run_checks()
    for check in checks:
        print(check.line())
    required_failed = [c for c in checks if not c.ok and not c.name.startswith("CIFAR-10")]
    print(f"{config.describe()}")
    print("Environment OK." if not required_failed else f"{len(required_failed)} problem(s): see [FAIL] lines above.")
    return 1 if required_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

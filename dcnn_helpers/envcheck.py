"""Environment check: ``python -m dcnn_helpers.envcheck`` prints [OK]/[FAIL] per requirement, the device and the data.

Introduced in notebook 00 (setup and tour). Please paste its output into every bug report.

Two modes: ``--full`` (the default on your own machine) checks everything ``make lab`` installs: the run-time
dependencies and the ``lab``, ``test`` and ``tools`` extras; ``--runtime`` (the default on Google Colab) checks only
what the notebooks need when they run, since hosted notebooks bring their own front end and need no test tools.

It never crashes: a bad setting (``DCNN_PROFILE``, ``DCNN_DEVICE``), broken package metadata or an unreadable data
folder is reported as a [FAIL] line, so the report can always be pasted.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from . import config, data

__all__ = ["Check", "requirements", "check_requirement", "check_profile", "check_device", "check_data", "run_checks",
           "main"]

DISTRIBUTION = "dcnn-helpers"
FULL_EXTRAS = ("lab", "test", "tools")  # what `make lab` installs besides the run-time dependencies


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'OK' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def in_colab() -> bool:
    """Are we on Google Colab? (its module is loaded in notebooks; its runtime sets ``COLAB_RELEASE_TAG``)"""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def requirements(extras: tuple[str, ...] = FULL_EXTRAS) -> list[Requirement]:
    """The package's requirements for this Python (with the given extras; ``()``: run time only), from its installed
    metadata or else ``pyproject.toml``."""
    if isinstance(extras, str) or not all(isinstance(extra, str) for extra in extras):
        raise TypeError(f"extras must be a tuple of extra names such as ('test',), got {extras!r}")
    try:
        raw = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raw = _requirements_from_pyproject(config.REPO_ROOT / "pyproject.toml")
    wanted = []
    for text in raw:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ValueError(f"the installed metadata of {DISTRIBUTION} lists an invalid requirement {text!r} "
                             f"({str(exc).splitlines()[0]}); reinstall it with make setup") from None
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in ("",) + tuple(extras)):
            wanted.append(req)
    return wanted


def _requirements_from_pyproject(path: Path) -> list[str]:
    try:  # installed packages (the usual case) never get here
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # Python 3.10: the backport pyproject.toml declares for it
        import tomli as tomllib

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
    try:
        Version(version)
    except (InvalidVersion, TypeError):  # a dist-info folder without (valid) metadata, left by a broken install
        return Check(req.name, False, f"installed with broken metadata (version {version!r}); reinstall it")
    ok = req.specifier.contains(version, prereleases=True)
    return Check(req.name, ok, f"{version}" + ("" if ok else f" (need {req.specifier})"))


def check_profile() -> Check:
    """Is ``DCNN_PROFILE`` unset or a profile, and which one is active?"""
    try:
        return Check("profile", True, config.profile())
    except ValueError as exc:
        return Check("profile", False, str(exc))


def check_device() -> Check:
    """Which device the course will use (a CPU is fine: every notebook runs in the laptop profile)."""
    try:
        return Check("device", True, str(config.device()))
    except (RuntimeError, ValueError) as exc:
        return Check("device", False, str(exc))


def check_data() -> list[Check]:
    """Is full CIFAR-10 in the data folder, and is the small committed sample there?"""
    folder = config.data_dir() / data.CIFAR10_FOLDER
    problems = data.cache_problems(folder)
    full = Check(
        "CIFAR-10",
        not problems,
        f"verified in {folder}"
        if not problems
        else f"not ready in {folder}: {problems[0]} (notebook 07 downloads it; offline, copy the cache files or "
        f"{data.TARBALL} there, or set DCNN_DATA)",
    )
    sample = data.sample_path()
    return [full, Check("CIFAR-10 sample", sample.exists(), str(sample) if sample.exists() else f"missing: {sample}")]


def _guarded(name: str, check: Callable[[], list[Check]]) -> list[Check]:
    """``check()``, or one [FAIL] line naming what broke: the report must come out whatever is wrong."""
    try:
        return check()
    except Exception as exc:  # broken metadata, an unreadable folder, ...: reported, never raised
        return [Check(name, False, f"{type(exc).__name__}: {' '.join(str(exc).split())}")]


def run_checks(runtime: bool = False) -> list[Check]:
    """All checks, in report order; ``runtime``: the run-time requirements only, not the extras."""
    if not isinstance(runtime, bool):
        raise TypeError(f"runtime must be True or False, got {runtime!r}")
    extras = () if runtime else FULL_EXTRAS
    checks = [Check("python", sys.version_info >= (3, 10), sys.version.split()[0] + " (need >= 3.10)")]
    checks += _guarded("requirements", lambda: [check_requirement(req) for req in requirements(extras)])
    checks += _guarded("profile", lambda: [check_profile()])
    checks += _guarded("device", lambda: [check_device()])
    checks += _guarded("CIFAR-10", check_data)
    return checks


def _describe() -> str:
    try:
        return config.describe()
    except Exception as exc:  # the [FAIL] lines above already say what
        return f"Python {sys.version.split()[0]} | environment not fully described ({type(exc).__name__})"


def main(argv: Sequence[str] = ()) -> int:
    """Print the report; exit status 1 when a required package or the device fails (data is only informative).

    ``argv`` are command-line options (``--runtime`` or ``--full``); without either, Colab gets the run-time check.
    """
    parser = argparse.ArgumentParser(prog="python -m dcnn_helpers.envcheck", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--runtime", action="store_true", help="check only what the notebooks need at run time")
    mode.add_argument("--full", action="store_true", help="also check the lab, test and tools extras")
    args = parser.parse_args(list(argv))
    runtime = args.runtime or (in_colab() and not args.full)
    checks = run_checks(runtime)
    for check in checks:
        print(check.line())
    required_failed = [c for c in checks if not c.ok and not c.name.startswith("CIFAR-10")]
    print(_describe())
    print(
        "Checked: run-time requirements only" + (" (Colab detected; --full adds the extras)" if in_colab() else "")
        if runtime
        else f"Checked: run-time requirements and the {', '.join(FULL_EXTRAS)} extras (--runtime: run time only)"
    )
    print("Environment OK." if not required_failed else f"{len(required_failed)} problem(s): see [FAIL] lines above.")
    return 1 if required_failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""dcnn_helpers.envcheck: one [OK]/[FAIL] line per requirement, the device and the data."""

import subprocess
import sys

from packaging.requirements import Requirement

from dcnn_helpers import envcheck


def test_requirements_cover_pyproject_and_test_extra():
    names = {req.name for req in envcheck.requirements()}
    assert {"torch", "torchvision", "numpy", "scipy", "jupyterlab", "tqdm", "pytest", "nbval"} <= names


def test_check_requirement_passes_and_fails():
    assert envcheck.check_requirement(Requirement("numpy>=1.0")).ok
    too_new = envcheck.check_requirement(Requirement("numpy>=999"))
    assert not too_new.ok and "need >=999" in too_new.detail
    missing = envcheck.check_requirement(Requirement("surely-not-installed-package"))
    assert not missing.ok and "not installed" in missing.line()


def test_data_checks_report_missing_files(monkeypatch, tmp_path):
    monkeypatch.setenv("DCNN_DATA", str(tmp_path))
    full, sample = envcheck.check_data()
    assert not full.ok and "DCNN_DATA" in full.detail
    assert sample.ok, "the committed sample does not depend on DCNN_DATA"


def test_command_line_prints_a_report():
    result = subprocess.run(
        [sys.executable, "-m", "dcnn_helpers.envcheck"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("[OK] torch: ") for line in lines)
    assert any(line.startswith("[OK] device: ") for line in lines)
    assert "Environment OK." in lines

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


def test_runtime_requirements_leave_out_the_extras():
    runtime = {req.name for req in envcheck.requirements(())}
    assert {"torch", "ipywidgets", "pandas", "packaging", "matplotlib-inline"} <= runtime
    assert not {"jupyterlab", "pytest", "nbval", "nbconvert"} & runtime
    assert {"jupyterlab", "pytest", "nbconvert"} <= {req.name for req in envcheck.requirements()}


def _report(monkeypatch, capsys, argv, colab):
    if colab:
        monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    else:
        monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert envcheck.main(argv) == 0
    return capsys.readouterr().out


def test_colab_gets_the_runtime_check_unless_asked_for_the_full_one(monkeypatch, capsys):
    here = _report(monkeypatch, capsys, [], colab=False)
    assert "[OK] pytest: " in here and "Checked: run-time requirements and the lab, test, tools extras" in here
    colab = _report(monkeypatch, capsys, [], colab=True)
    assert "[OK] torch: " in colab and "pytest" not in colab and "jupyterlab" not in colab
    assert "Checked: run-time requirements only (Colab detected" in colab
    assert "[OK] pytest: " in _report(monkeypatch, capsys, ["--full"], colab=True)
    assert "pytest" not in _report(monkeypatch, capsys, ["--runtime"], colab=False)

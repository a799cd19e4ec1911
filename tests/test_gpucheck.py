"""dcnn_helpers.tools.gpucheck: notebooks executed one by one, results written as they come, failures recorded."""

import json
import tarfile

import nbformat
import pytest

from dcnn_helpers import bench
from dcnn_helpers.tools import gpucheck


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_tasks_run_in_order_and_a_failure_does_not_stop_the_check(tmp_path, monkeypatch):
    good = _notebook(tmp_path / "98_good.ipynb", "print(6 * 7)")
    bad = _notebook(tmp_path / "99_bad.ipynb", "print('before')", "1 / 0", "print('never')")
    monkeypatch.setattr(gpucheck, "notebook_paths", lambda: {"98": good, "99": bad})
    out, archive = tmp_path / "out", tmp_path / "results.tar"
    out.mkdir()
    rows = gpucheck.run_tasks(["99", "98"], out, archive=archive, cell_timeout=60)
    assert [(r["task"], r["status"]) for r in rows] == [("99", "error"), ("98", "ok")]
    assert "ZeroDivisionError" in rows[0]["error"]
    executed = nbformat.read(out / "99_bad.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "before\n"  # saved up to the failure
    assert json.loads((out / "summary.json").read_text())["rows"] == rows
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["98_good.ipynb", "99_bad.ipynb", "summary.json"]
    assert "| 98_good | ok |" in gpucheck.format_rows(rows)


def test_speedrun_task_writes_its_json_where_notebook_07_reads_it(tmp_path, monkeypatch):
    fake = dict(device="NVIDIA H100 80GB HBM3", summary=[dict(method="fast", runs=1, acc_mean=0.94, acc_ci95=0.0,
                acc_min=0.94, acc_max=0.94, time_mean=3.0, time_ci95=0.0, time_min=3.0, time_max=3.0,
                time_to_target=3.0)])
    monkeypatch.setattr(gpucheck.data, "course_cifar10", lambda *a: None)
    monkeypatch.setattr(bench, "speedrun", lambda *a, **k: fake)
    out, measured = tmp_path / "out", tmp_path / "measured"
    out.mkdir()
    rows = gpucheck.run_tasks(["speedrun"], out, seeds=1, measured_dir=measured)
    assert rows[0]["status"] == "ok"
    assert json.loads((measured / "speedrun-nvidia-h100-80gb-hbm3.json").read_text()) == fake


def test_unknown_tasks_and_bad_out_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpucheck.main(["--out", str(tmp_path), "--tasks", "speedrun", "42"])
    assert "unknown tasks ['42']" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit):
        gpucheck.main(["--out", str(blocker / "sub"), "--tasks", "00"])

"""dcnn_helpers.tools.workshop: student copies (stubs, cleared outputs, runnable) and the static site."""

import json
import re

import nbformat
import pytest
from nbclient import NotebookClient

from dcnn_helpers import config
from dcnn_helpers.tools import workshop

NOTEBOOKS = workshop.course_notebooks()


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_copy_replaces_every_solution(path):
    nb = _load(path)
    student = workshop.student_copy(nb)
    solutions = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    stubs = [c for c in student["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    assert solutions, f"{path.name} has no exercise solutions"
    assert len(stubs) == len(solutions)
    for solution, stub in zip(solutions, stubs):
        assert "".join(solution["source"]) != stub["source"]
        assert "Hint:" in stub["source"]
        assert "free" in stub["metadata"]["tags"] or "raise NotImplementedError(" in stub["source"]
    others = [c for c in student["cells"] if c["cell_type"] == "code" and c not in stubs]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in others)


def test_student_copies_are_written_fresh(tmp_path):
    out = tmp_path / "student"
    workshop.write_student_copies(out)
    (out / "stale.ipynb").write_text("{}")
    written = workshop.write_student_copies(out)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    assert not (out / "stale.ipynb").exists() and "Generated" in (out / "README.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"], "no temporary folder left beside it"


def test_a_folder_the_command_did_not_write_is_never_replaced(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="did not write"):
        workshop.write_student_copies(tmp_path)
    with pytest.raises(FileExistsError, match="did not write"):
        workshop.build_site(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
    for inside in (workshop.NOTEBOOK_DIR, workshop.NOTEBOOK_DIR / "student", config.REPO_ROOT, config.REPO_ROOT.parent):
        with pytest.raises(ValueError, match="notebooks' folder"):
            workshop.write_student_copies(inside)


def test_student_folders_of_earlier_versions_are_recognised(tmp_path):
    (tmp_path / "README.md").write_text(workshop.GENERATED_NOTE)
    (tmp_path / "00_old.ipynb").write_text("{}")
    workshop.write_student_copies(tmp_path)
    assert not (tmp_path / "00_old.ipynb").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_copy_runs_with_only_stub_errors(path, tmp_path, monkeypatch):
    """Everything but the stubs runs in the smoke profile: no cell depends on an exercise's solution."""
    monkeypatch.setenv("DCNN_PROFILE", "smoke")
    nb = nbformat.reads(json.dumps(workshop.student_copy(_load(path))), as_version=4)
    NotebookClient(nb, timeout=600, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if cell.source.startswith(workshop.STUB_MARKER):
            assert [e.ename for e in errors] == ["NotImplementedError"], cell.source
        else:
            assert not errors, f"{path.name}: {cell.source[:80]!r} raised {[e.ename for e in errors]}"


def test_site_builds_with_index_and_local_mathjax(tmp_path):
    index = workshop.build_site(tmp_path)
    text = index.read_text()
    for path in NOTEBOOKS:
        assert f'href="{path.stem}.html"' in text
        page = (tmp_path / f"{path.stem}.html").read_text()
        assert "mathjax/MathJax.js" in page
        assert not re.search(r'<script[^>]*src="https?:', page), "pages must work offline"
    assert (tmp_path / "mathjax" / "MathJax.js").is_file()
    titles = re.findall(r'\.html">([^<]+)</a>', text)
    assert titles[0].startswith("00")


def test_timings_measure_the_kernel_and_restore_the_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("DCNN_PROFILE", "smoke")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, time\nassert os.environ['DCNN_PROFILE'] == 'laptop'\n"
        "end = time.process_time() + 0.5\nwhile time.process_time() < end:\n    pass"
    )])
    path = tmp_path / "01_busy.ipynb"
    nbformat.write(nb, path)
    [(name, wall, cpu)] = workshop.time_notebooks("laptop", [path])
    assert name == "01_busy.ipynb" and wall >= 0.5 and cpu >= 0.5, (wall, cpu)
    assert config.profile() == "smoke"
    table = workshop.timings_table([(name, wall, cpu)], "laptop")
    assert "| 01_busy.ipynb |" in table and "Profile laptop, measured" in table
    with pytest.raises(ValueError, match="profile must be one of"):
        workshop.time_notebooks("fast", [path])

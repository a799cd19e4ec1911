"""dcnn_helpers.tools.colab: Open-in-Colab badges and the set-up cell that acts only in Colab."""

import json
import shutil
import subprocess
import sys
import types

import nbformat
import pytest
from nbclient import NotebookClient

from dcnn_helpers.tools import colab, workshop

NOTEBOOKS = workshop.course_notebooks()
REPO = "https://github.com/example-org/dcnn-course"


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("url", ["https://gitlab.com/a/b", "github.com/a/b", "https://github.com/a", None, ""])
def test_bad_repository_is_refused_by_name(url):
    with pytest.raises(ValueError, match="repository must be a GitHub URL"):
        colab.colab_link(url, "01_linear_regions.ipynb")


def test_bad_branch_is_refused_by_name():
    with pytest.raises(ValueError, match="branch"):
        colab.setup_cell(REPO, branch="main; rm -rf /")


def test_link_and_badge_point_at_the_notebook_on_github():
    assert colab.parse_repository(REPO + ".git") == ("example-org", "dcnn-course")
    link = colab.colab_link(REPO, "01_linear_regions.ipynb", "dev")
    assert link == ("https://colab.research.google.com/github/example-org/dcnn-course/blob/dev/"
                    "notebooks/01_linear_regions.ipynb")
    assert link in colab.badge_cell(REPO, "01_linear_regions.ipynb", "dev")["source"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stamp_adds_two_cells_and_changes_nothing_else(path):
    nb = colab.unstamp(_load(path))
    stamped = colab.stamp(nb, REPO, path.name)
    assert colab.BADGE_TAG in stamped["cells"][0]["metadata"]["tags"]
    first_code = next(c for c in stamped["cells"] if c["cell_type"] == "code")
    assert colab.SETUP_TAG in first_code["metadata"]["tags"]
    assert len(stamped["cells"]) == len(nb["cells"]) + 2
    nbformat.validate(nbformat.reads(json.dumps(stamped), as_version=4))
    assert colab.unstamp(stamped) == nb
    assert colab.stamp(stamped, REPO, path.name) == stamped, "stamping twice must change nothing"
    other = colab.stamp(stamped, "https://github.com/someone/fork", path.name)
    assert colab.stamped_repository(other) == "https://github.com/someone/fork"
    assert len(other["cells"]) == len(stamped["cells"])


def _run_setup_cell(monkeypatch, in_colab: bool) -> list[list[str]]:
    """Execute the set-up cell's source; returns the commands it ran (recorded, not run)."""
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: commands.append(cmd))
    monkeypatch.setattr(sys, "path", list(sys.path))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(colab.setup_cell(REPO)["source"], {})
    return commands


def test_setup_cell_does_nothing_outside_colab(monkeypatch, capsys):
    assert _run_setup_cell(monkeypatch, in_colab=False) == []
    assert capsys.readouterr() == ("", "")


def test_setup_cell_clones_and_installs_in_colab(monkeypatch):
    clone, install = _run_setup_cell(monkeypatch, in_colab=True)
    assert clone == ["git", "clone", "--depth", "1", "--branch", "main", REPO, "/content/dcnn-course"]
    assert install[1:] == ["-m", "pip", "install", "--quiet", "--no-deps", "-e", "/content/dcnn-course"]
    assert sys.path[0] == "/content/dcnn-course"


def test_committed_notebooks_agree_with_pyproject():
    """Stamped with the repository pyproject.toml names, or not stamped at all while it names none."""
    repository = colab.repository_from_pyproject()
    for path in NOTEBOOKS:
        nb = _load(path)
        if repository is None:
            assert colab.stamped_repository(nb) is None, f"{path.name} is stamped but pyproject names no repository"
        else:
            expected = "https://github.com/{}/{}".format(*colab.parse_repository(repository))
            assert colab.stamped_repository(nb) == expected, f"run `make colab`: {path.name} is not stamped"


def test_command_line_stamps_and_removes(tmp_path, capsys):
    copies = [shutil.copy(path, tmp_path / path.name) for path in NOTEBOOKS[:2]]
    originals = [colab.unstamp(_load(p)) for p in NOTEBOOKS[:2]]
    assert colab.main([*map(str, copies), "--repo", REPO]) == 0
    assert all(colab.stamped_repository(_load(p)) == REPO for p in tmp_path.glob("*.ipynb"))
    assert colab.main([*map(str, copies), "--remove"]) == 0
    assert [_load(p) for p in sorted(tmp_path.glob("*.ipynb"))] == originals
    assert colab.main([str(copies[0]), "--repo", "https://example.com/x/y"]) == 2
    assert "repository must be a GitHub URL" in capsys.readouterr().err


def test_command_line_without_repository_says_where_to_set_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(colab, "repository_from_pyproject", lambda: None)
    copy = shutil.copy(NOTEBOOKS[0], tmp_path / NOTEBOOKS[0].name)
    assert colab.main([str(copy)]) == 2
    assert "[project.urls]" in capsys.readouterr().err


def test_student_copy_drops_the_badge_and_keeps_the_setup_cell():
    nb = colab.stamp(_load(NOTEBOOKS[1]), REPO, NOTEBOOKS[1].name)
    tags = [t for c in workshop.student_copy(nb)["cells"] for t in c["metadata"].get("tags", [])]
    assert colab.BADGE_TAG not in tags and colab.SETUP_TAG in tags


def test_site_shows_the_badge_as_a_text_link(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    path = NOTEBOOKS[0]
    (source / path.name).write_text(json.dumps(colab.stamp(_load(path), REPO, path.name)), encoding="utf-8")
    workshop.build_site(tmp_path / "site", source)
    page = (tmp_path / "site" / f"{path.stem}.html").read_text()
    assert colab.colab_link(REPO, path.name) in page
    assert colab.BADGE_IMAGE not in page, "the site must not load remote images"


def test_stamped_notebook_runs_and_the_setup_cell_stays_silent(tmp_path, monkeypatch):
    """Outside Colab a stamped notebook runs as before: the set-up cell prints nothing and breaks nothing."""
    monkeypatch.setenv("DCNN_PROFILE", "smoke")
    path = NOTEBOOKS[0]
    nb = nbformat.reads(json.dumps(colab.stamp(_load(path), REPO, path.name)), as_version=4)
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
    setup = next(c for c in nb.cells if colab.SETUP_TAG in c.metadata.get("tags", []))
    assert setup.execution_count == 1 and setup.outputs == []

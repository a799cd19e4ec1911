"""The public site's configuration (book/): every notebook in the navigation, solutions collapsed, Colab cells out.

Building the site needs Jupyter Book (`make book`, and the workflow's "book" job); these tests need only the files.
"""

import copy
import importlib.util
import json
import re

from dcnn_helpers import config

ROOT = config.REPO_ROOT
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _extension():
    spec = importlib.util.spec_from_file_location("course_book", ROOT / "book" / "_ext" / "course_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_navigation_lists_every_notebook_in_order():
    toc = (ROOT / "book" / "_toc.yml").read_text(encoding="utf-8")
    listed = re.findall(r"^\s+- file: notebooks/(\S+)$", toc, re.M)
    assert listed == [path.stem for path in NOTEBOOKS]
    assert re.search(r"^root: README$", toc, re.M)
    for page in re.findall(r"^\s+- file: (?!notebooks/)(\S+)$", toc, re.M):
        assert (ROOT / f"{page}.md").is_file(), page


def test_config_renders_saved_outputs_with_launch_buttons():
    cfg = (ROOT / "book" / "_config.yml").read_text(encoding="utf-8")
    assert re.search(r'^\s+execute_notebooks: "off"', cfg, re.M), "the site shows the committed laptop-profile runs"
    assert "binderhub_url:" in cfg and "colab_url:" in cfg
    assert re.search(r"^\s+course_book: _ext\b", cfg, re.M)


def test_solutions_are_collapsed_and_colab_cells_removed():
    book = _extension()
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    nb["cells"][:0] = [
        {"cell_type": "markdown", "metadata": {"tags": ["colab-badge"]}, "source": "badge"},
        {"cell_type": "code", "metadata": {"tags": ["colab-setup"]}, "source": "", "outputs": []},
    ]
    original = copy.deepcopy(nb)
    shown = book.prepare_notebook(nb)
    solutions = [c for c in shown["cells"] if "solution" in c["metadata"].get("tags", [])]
    assert solutions, "notebook 00 has a tagged solution"
    for cell in solutions:
        assert cell["metadata"]["tags"][-1] == "hide-cell"
        assert cell["metadata"]["mystnb"]["code_prompt_show"] == "Show solution"
    assert not any({"colab-badge", "colab-setup"} & set(c["metadata"].get("tags", [])) for c in shown["cells"])
    others = [c for c in original["cells"][2:] if "solution" not in c["metadata"].get("tags", [])]
    assert others == [c for c in shown["cells"] if "solution" not in c["metadata"].get("tags", [])]


def test_repository_address_from_pyproject_or_the_workflow(tmp_path):
    book = _extension()
    assert book.repository_url(tmp_path, {}) is None
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "someone/course"}
    assert book.repository_url(tmp_path, github) == "https://github.com/someone/course"
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/owner/name.git"\n')
    assert book.repository_url(tmp_path, github) == "https://github.com/owner/name"

"""Sphinx extension of the course's Jupyter Book (``book/_config.yml``, ``make book``).

- Solutions collapsed: code cells tagged ``solution`` (an exercise's answer, first line ``# Hint: ...``) get
  myst-nb's ``hide-cell`` tag while the site is read, so code and output sit behind a "Show solution" button and a
  reader studying alone tries the exercise first. The notebooks on disk are not changed: the download button and
  the Binder and Colab launch buttons give the notebook as committed.
- The Colab badge and set-up cell (tags ``colab-badge``, ``colab-setup``: ``make colab``) are left out of the pages;
  the site's own launch buttons open Binder and Colab.
- The repository's address, for the launch, repository and issue buttons, is ``Repository`` under
  ``[project.urls]`` in ``pyproject.toml``, else the repository a GitHub workflow is building; with neither, the
  buttons are left out rather than pointing nowhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

try:
    import tomllib  # Python >= 3.11
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

SOLUTION_TAG = "solution"
COLLAPSED_TAG = "hide-cell"  # myst-nb: input and output behind one toggle
REMOVED_TAGS = ("colab-badge", "colab-setup")
PROMPTS = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def prepare_notebook(nb: dict) -> dict:
    """``nb`` (parsed JSON) as the site shows it: solutions collapsed, the Colab cells removed. ``nb`` is modified."""
    nb["cells"] = [cell for cell in nb["cells"] if not set(REMOVED_TAGS) & set(_tags(cell))]
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and SOLUTION_TAG in _tags(cell):
            metadata = cell.setdefault("metadata", {})
            metadata["tags"] = _tags(cell) + [COLLAPSED_TAG]
            metadata.setdefault("mystnb", {}).update(PROMPTS)
    return nb


def repository_url(root: Path, environ: Mapping[str, str]) -> str | None:
    """The repository's web address: pyproject.toml's ``[project.urls] Repository``, else GitHub's workflow variables."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        urls = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("urls", {})
        if urls.get("Repository"):
            return urls["Repository"].rstrip("/").removesuffix(".git")
    if environ.get("GITHUB_REPOSITORY"):
        return f"{environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{environ['GITHUB_REPOSITORY']}"
    return None


def _on_config_inited(app, config) -> None:
    url = repository_url(Path(app.srcdir), os.environ)
    options = dict(config.html_theme_options)
    if url:
        options.update(repository_url=url, use_repository_button=True, use_issues_button=True)
    else:
        options.update(launch_buttons={}, use_repository_button=False, use_issues_button=False)
    config.html_theme_options = options


def _on_source_read(app, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = json.dumps(prepare_notebook(json.loads(source[0])))


def setup(app) -> dict:
    app.connect("config-inited", _on_config_inited)
    app.connect("source-read", _on_source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

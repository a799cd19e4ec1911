"""Open-in-Colab badges and the Colab set-up cell: ``python -m dcnn_helpers.tools.colab`` (``make colab``).

The course's public repository is named in one place, ``[project.urls] Repository`` in ``pyproject.toml``. From it
this module stamps every notebook with two cells, both tagged so they can be found and replaced:

- a badge cell at the top (tag ``colab-badge``) linking to the notebook in Google Colab;
- a set-up cell before the first code cell (tag ``colab-setup``) that, when it detects Colab, clones the course and
  installs the helper package; anywhere else it does nothing and prints nothing.

The rest of the notebook is left as it is. Stamping twice gives the same notebook; ``--remove`` takes the cells out.
Maintainers run it (README, "GPU and Colab"); learners meet its cells at the top of every stamped notebook.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Sequence

from .. import config
from .nbclean import cell_tags, check_notebook, error_line, read_notebook, run_batch, write_notebook

__all__ = ["BADGE_TAG", "SETUP_TAG", "BADGE_IMAGE", "GITHUB_URL", "BRANCH", "SETUP_SOURCE", "parse_repository",
           "repository_from_pyproject", "colab_link", "badge_cell", "setup_cell", "unstamp", "stamp",
           "stamped_repository", "main"]

BADGE_TAG = "colab-badge"
SETUP_TAG = "colab-setup"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
GITHUB_URL = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?")
BRANCH = re.compile(r"[A-Za-z0-9._/-]+")
SETUP_SOURCE = '''\
# Colab set-up: in Google Colab this fetches the course and installs its helper package; anywhere else it does
# nothing. Keep it as the first code cell.
import sys

if "google.colab" in sys.modules:
    import subprocess
    from pathlib import Path

    course = Path("/content/{name}")
    if not course.exists():
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}", "{url}", str(course)], check=True)
    # --no-deps: Colab already has torch, torchvision, numpy, scipy, matplotlib, seaborn, ipywidgets and tqdm.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(course)], check=True)
    sys.path.insert(0, str(course))  # this kernel started before the install, so it cannot see it yet
'''


def parse_repository(url: str) -> tuple[str, str]:
    """``(owner, name)`` of a GitHub URL such as ``https://github.com/owner/name``; ValueError otherwise."""
    match = GITHUB_URL.fullmatch(url.strip()) if isinstance(url, str) else None
    if not match:
        raise ValueError(f"repository must be a GitHub URL like https://github.com/<owner>/<name>, got {url!r}")
    return match["owner"], match["name"]


def repository_from_pyproject(pyproject: Path = config.REPO_ROOT / "pyproject.toml") -> str | None:
    """The URL under ``[project.urls] Repository`` in ``pyproject``, or None when it is not set."""
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # Python 3.10: the backport pyproject.toml declares for it
        import tomli as tomllib

    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    return project.get("urls", {}).get("Repository")


def _owner_name(repository: str, branch: str) -> tuple[str, str]:
    if not isinstance(branch, str) or not BRANCH.fullmatch(branch):
        raise ValueError(f"branch must be a plain git branch name such as 'main', got {branch!r}")
    return parse_repository(repository)


def colab_link(repository: str, notebook: str, branch: str = "main") -> str:
    """The Colab address that opens ``notebooks/<notebook>`` of ``repository`` at ``branch``."""
    owner, name = _owner_name(repository, branch)
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/notebooks/{notebook}"


def badge_cell(repository: str, notebook: str, branch: str = "main") -> dict:
    """The markdown cell with the Open-in-Colab badge (tagged ``colab-badge``)."""
    link = colab_link(repository, notebook, branch)
    return {
        "cell_type": "markdown",
        "id": BADGE_TAG,
        "metadata": {"tags": [BADGE_TAG]},
        "source": f"[![Open In Colab]({BADGE_IMAGE})]({link})",
    }


def setup_cell(repository: str, branch: str = "main") -> dict:
    """The code cell that installs the course in Colab and does nothing elsewhere (tagged ``colab-setup``)."""
    owner, name = _owner_name(repository, branch)
    source = SETUP_SOURCE.format(name=name, branch=branch, url=f"https://github.com/{owner}/{name}")
    return {"cell_type": "code", "execution_count": None, "id": SETUP_TAG, "metadata": {"tags": [SETUP_TAG]},
            "outputs": [], "source": source}


def unstamp(nb: dict) -> dict:
    """A copy of ``nb`` (parsed JSON) without the badge and set-up cells."""
    clean = copy.deepcopy(check_notebook(nb))
    clean["cells"] = [c for c in clean["cells"] if not {BADGE_TAG, SETUP_TAG} & set(cell_tags(c))]
    return clean


def stamp(nb: dict, repository: str, notebook: str, branch: str = "main") -> dict:
    """A copy of ``nb`` with the badge cell first and the set-up cell before its first code cell.

    Cells stamped before are replaced, so stamping is idempotent and follows a change of repository or branch.
    """
    stamped = unstamp(nb)
    minor = stamped.get("nbformat_minor")
    if not isinstance(minor, int) or minor < 5:
        raise ValueError(f"nb must be in nbformat 4.5 or later (cells have ids), got 4.{minor}; save it again with a "
                         "recent Jupyter")
    cells = stamped["cells"]
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    cells.insert(first_code, setup_cell(repository, branch))
    cells.insert(0, badge_cell(repository, notebook, branch))
    return stamped


def stamped_repository(nb: dict) -> str | None:
    """The repository URL a stamped notebook's set-up cell clones, or None for an unstamped notebook."""
    check_notebook(nb)
    for cell in nb["cells"]:
        if SETUP_TAG in cell_tags(cell):
            match = re.search(r'"(https://github\.com/[^"]+)"', "".join(cell["source"]))
            return match.group(1) if match else None
    return None


def _restamp(path: Path, repository: str | None, branch: str) -> str | None:
    """Stamp (or, without a repository, unstamp) the notebook at ``path`` in place; what was done, or None."""
    nb = read_notebook(path)
    new = unstamp(nb) if repository is None else stamp(nb, repository, path.name, branch)
    if new == nb:
        return None
    write_notebook(path, new)
    return f"{'unstamped' if repository is None else 'stamped'} {path}"


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: stamp (or ``--remove``) every notebook named; exit status 1 when any failed."""
    parser = argparse.ArgumentParser(prog="python -m dcnn_helpers.tools.colab", description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks to stamp in place")
    parser.add_argument("--repo", help="GitHub URL (default: [project.urls] Repository in pyproject.toml)")
    parser.add_argument("--branch", default="main", help="branch the badges open (default: main)")
    parser.add_argument("--remove", action="store_true", help="take the badge and set-up cells out instead")
    args = parser.parse_args(argv)
    repository = None
    if not args.remove:
        try:
            repository = args.repo or repository_from_pyproject()
            if not repository:
                raise ValueError("no repository URL: set Repository under [project.urls] in pyproject.toml to the "
                                 "course's GitHub URL (https://github.com/<owner>/<name>), or pass --repo")
            _owner_name(repository, args.branch)
        except (OSError, ValueError) as error:  # pyproject.toml unreadable or malformed (tomllib's errors are ValueErrors)
            print(f"{parser.prog}: error: {error_line(error)}", file=sys.stderr)
            return 2
    status = run_batch(parser.prog, args.notebooks, lambda path: _restamp(path, repository, args.branch))
    if not args.remove and status == 0:
        print("Now re-execute the notebooks (make course) so the new cells have their place in the run order.")
    return status


if __name__ == "__main__":
    raise SystemExit(main())

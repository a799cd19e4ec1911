"""Lint of the saved notebooks: names, template sections, clean execution, size, volatile metadata.

Execution itself is tested by nbval (``make nbval``); this checks what is committed.
"""

import json
import re
from pathlib import Path

import pytest

from dcnn_helpers import config
from dcnn_helpers.tools.nbclean import volatile_metadata

NOTEBOOK_DIR = config.REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TEMPLATE_SECTIONS = ("Learning goals", "Expected run time", "Exercises", "Summary", "References")
PAPER_SECTION = "What the paper states, what we measured"
MAX_BYTES = 2_000_000


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _headings(nb: dict) -> list[str]:
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return [h.strip() for h in re.findall(r"^#{1,3} (.+)$", text, re.M)]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_is_numbered_snake_case(path):
    assert re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb", path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_has_template_sections(path):
    headings = _headings(_load(path))
    wanted = TEMPLATE_SECTIONS + ((PAPER_SECTION,) if not path.name.startswith("00_") else ())
    missing = [s for s in wanted if not any(h.startswith(s) for h in headings)]
    assert not missing, f"{path.name} lacks sections {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_top_to_bottom_without_errors(path):
    code = [c for c in _load(path)["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts}"
    errors = [o.get("ename") for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{path.name} has saved errors {errors}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_small_and_clean_of_volatile_metadata(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB"
    assert not volatile_metadata(_load(path)), "run `python -m dcnn_helpers.tools.nbclean` on it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_text_has_no_control_characters(path):
    """A tab or bell in a cell is a LaTeX command eaten by a Python escape (\\times -> tab + "imes")."""
    for index, cell in enumerate(_load(path)["cells"]):
        bad = re.search(r"[\x00-\x09\x0b-\x1f]", "".join(cell["source"]))
        assert not bad, f"{path.name}, cell {index}: control character {bad.group()!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checked_cells_are_deterministic_outputs(path):
    """Cells marked NBVAL_CHECK_OUTPUT print text (no figures, whose bytes differ between runs)."""
    for cell in _load(path)["cells"]:
        if cell["cell_type"] == "code" and "# NBVAL_CHECK_OUTPUT" in "".join(cell["source"]):
            kinds = {o["output_type"] for o in cell["outputs"]}
            assert kinds <= {"stream", "execute_result"}, f"{path.name}: checked cell shows {kinds}"
            assert all("image/png" not in o.get("data", {}) for o in cell["outputs"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_tagged_solution(path):
    """Each `### Exercise` heading is followed, before the next exercise or section, by a code cell tagged
    `solution` whose first line is a `# Hint:` comment (the student copy turns it into a stub)."""
    sections: list[list[dict]] = []
    for cell in _load(path)["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and re.search(r"^#{1,2} ", source, re.M):
            sections.append([])  # a new top-level section ends the current exercise
        if cell["cell_type"] == "markdown" and re.search(r"^#{3,4} Exercise", source, re.M):
            sections.append([cell])
        elif sections and sections[-1] and sections[-1][0]["cell_type"] == "markdown":
            sections[-1].append(cell)
        if "solution" in cell.get("metadata", {}).get("tags", []):
            assert cell["cell_type"] == "code", f"{path.name}: only code cells can be solutions"
            assert source.startswith("# Hint:"), f"{path.name}: solution must start with '# Hint:': {source[:60]!r}"
    exercises = [s for s in sections if s and re.search(r"^#{3,4} Exercise", "".join(s[0]["source"]), re.M)]
    assert exercises, f"{path.name} has no exercises"
    for exercise in exercises:
        title = "".join(exercise[0]["source"]).strip().splitlines()[0]
        tagged = [c for c in exercise[1:] if "solution" in c.get("metadata", {}).get("tags", [])]
        assert tagged, f"{path.name}: {title!r} has no code cell tagged 'solution'"

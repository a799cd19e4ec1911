"""The claims ledger: ``CLAIMS.md`` gathers every notebook's table "What the paper states, what we measured".

``python -m dcnn_helpers.tools.claims`` reads the saved (executed) notebooks and writes ``CLAIMS.md`` atomically;
``--check`` only compares and exits 1 when the file is out of date. Both exit 1, naming the notebook, when a
notebook's table is missing or not in the ledger format.

The ledger format, which every notebook's table follows: a markdown table under the heading
``## What the paper states, what we measured`` (in that cell, in a markdown cell below it, or as the
``text/markdown`` output of a code cell below it, before the next ``## `` heading), with exactly the header ::

    | claim | source | paper states | measured here | status |

one row per claim. ``source`` names the paper and the place (section, table, theorem, equation, abstract), or says
"computed here"; ``status`` is one of :data:`STATUSES`. A ``|`` inside a cell is written ``\\|``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .. import config, fileio, plotting

__all__ = ["HEADING", "COLUMNS", "STATUSES", "Claim", "LedgerError", "notebook_claims", "collect", "render", "main"]

HEADING = "## What the paper states, what we measured"
COLUMNS = plotting.CLAIM_COLUMNS
STATUSES = plotting.CLAIM_STATUSES
LEDGER = config.REPO_ROOT / "CLAIMS.md"
NOTEBOOK_DIR = config.REPO_ROOT / "notebooks"


class LedgerError(ValueError):
    """A notebook's claims table is missing or not in the ledger format; the message names the notebook."""


@dataclass(frozen=True)
class Claim:
    """One row of a notebook's claims table."""

    notebook: str
    claim: str
    source: str
    paper: str
    measured: str
    status: str


def _cells_text(cell: dict) -> list[str]:
    """The markdown a cell shows: its source for a markdown cell, its ``text/markdown`` outputs for a code cell."""
    if cell["cell_type"] == "markdown":
        return ["".join(cell["source"])]
    texts = []
    for out in cell.get("outputs", []):
        markdown = out.get("data", {}).get("text/markdown")
        if markdown is not None:
            texts.append("".join(markdown) if isinstance(markdown, list) else markdown)
    return texts


def _split_row(line: str) -> list[str]:
    body = line.strip()
    if not (body.startswith("|") and body.endswith("|")):
        return []
    cells = re.split(r"(?<!\\)\|", body[1:-1])
    return [cell.strip() for cell in cells]


def _section_texts(nb: dict, name: str) -> list[str]:
    """The markdown shown from the paper-table heading to the next ``## `` heading."""
    texts, inside = [], False
    for cell in nb["cells"]:
        for text in _cells_text(cell):
            lines = text.splitlines()
            if not inside:
                if HEADING in (line.strip() for line in lines):
                    inside = True
                    start = [line.strip() for line in lines].index(HEADING) + 1
                    texts.append("\n".join(lines[start:]))
                continue
            if cell["cell_type"] == "markdown" and any(line.startswith("## ") for line in lines):
                return texts
            texts.append(text)
    if not inside:
        raise LedgerError(f"{name}: no heading {HEADING!r}; every notebook ends with its claims table")
    return texts


def notebook_claims(path: str | Path) -> list[Claim]:
    """The claims of one saved notebook, from its table in the ledger format (see the module docstring).

    Raises :class:`LedgerError` naming the notebook when the table is missing, has another header, a row with
    another number of cells, or a status outside :data:`STATUSES`.
    """
    path = Path(path)
    name = path.name
    nb = json.loads(path.read_text(encoding="utf-8"))
    tables: list[list[list[str]]] = []
    for text in _section_texts(nb, name):
        rows: list[list[str]] = []
        for line in text.splitlines() + [""]:
            cells = _split_row(line)
            if cells:
                rows.append(cells)
            elif rows:
                tables.append(rows)
                rows = []
    if len(tables) != 1:
        raise LedgerError(f"{name}: expected one markdown table under {HEADING!r}, found {len(tables)} "
                          "(is the notebook saved executed?)")
    if len(tables[0]) < 3:
        raise LedgerError(f"{name}: the claims table needs a header, a separator line and at least one row")
    header, separator, *rows = tables[0]
    if tuple(h.lower() for h in header) != COLUMNS:
        raise LedgerError(f"{name}: the claims table has columns {header}; the ledger format is "
                          f"| {' | '.join(COLUMNS)} |")
    if not all(re.fullmatch(r":?-{3,}:?", cell) for cell in separator) or len(separator) != len(COLUMNS):
        raise LedgerError(f"{name}: the claims table's second line must be | --- | --- | --- | --- | --- |")
    claims = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(COLUMNS):
            raise LedgerError(f"{name}: row {number} of the claims table has {len(row)} cells, not {len(COLUMNS)} "
                              f"(write a | inside a cell as \\|): {row}")
        if row[4] not in STATUSES:
            raise LedgerError(f"{name}: row {number} has status {row[4]!r}; allowed: {', '.join(STATUSES)}")
        claims.append(Claim(name, *row))
    return claims


def _paths(notebooks: Sequence[str | Path] | None) -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")) if notebooks is None else [Path(p) for p in notebooks]


def collect(notebooks: Sequence[str | Path] | None = None) -> tuple[list[Claim], list[str]]:
    """Claims of every notebook (default: ``notebooks/NN_*.ipynb`` in order) and one problem line per notebook
    whose table could not be read."""
    paths = _paths(notebooks)
    claims, problems = [], []
    for path in paths:
        try:
            claims += notebook_claims(path)
        except LedgerError as error:
            problems.append(str(error))
    return claims, problems


def _title(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        match = re.search(r"^# (.+)$", "".join(cell["source"]), re.M) if cell["cell_type"] == "markdown" else None
        if match:
            return match.group(1).strip()
    return path.stem


def render(claims: Sequence[Claim], notebooks: Sequence[str | Path] | None = None,
           problems: Sequence[str] = ()) -> str:
    """The text of ``CLAIMS.md``: a summary, then one table per notebook (a notebook with a problem says so)."""
    paths = _paths(notebooks)
    counts = {status: sum(c.status == status for c in claims) for status in STATUSES}
    lines = [
        "# Claims ledger",
        "",
        "Every claim the course checks against a paper, gathered from the table *What the paper states, what we",
        "measured* of each notebook, with the measurement of the saved (executed) notebook. Generated by",
        "`python -m dcnn_helpers.tools.claims`; do not edit by hand (a test keeps it in step with the notebooks).",
        "",
        "Status: " + "; ".join(f"**{status}**: {meaning}" for status, meaning in STATUSES.items()) + ".",
        "",
        f"{len(claims)} claims: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + ".",
    ]
    for path in paths:
        lines += ["", f"## [{_title(path)}](notebooks/{path.name})", ""]
        mine = [c for c in claims if c.notebook == path.name]
        trouble = [p for p in problems if p.startswith(f"{path.name}:")]
        if trouble:
            lines += [f"Not in the ledger format yet: {p.split(': ', 1)[1]}" for p in trouble]
            continue
        lines += [f"| {' | '.join(COLUMNS)} |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
        lines += [f"| {c.claim} | {c.source} | {c.paper} | {c.measured} | {c.status} |" for c in mine]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dcnn_helpers.tools.claims [--check]``: write ``CLAIMS.md``, or check that it is up to date."""
    parser = argparse.ArgumentParser(prog="python -m dcnn_helpers.tools.claims", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if CLAIMS.md is out of date")
    args = parser.parse_args(argv)
    claims, problems = collect()
    text = render(claims, problems=problems)
    for problem in problems:
        print(f"claims table: {problem}", file=sys.stderr)
    if args.check:
        current = LEDGER.read_text(encoding="utf-8") if LEDGER.is_file() else None
        if current != text:
            print(f"{LEDGER.name} is out of date: run python -m dcnn_helpers.tools.claims", file=sys.stderr)
            return 1
    else:
        fileio.write_text(LEDGER, text)
        print(f"wrote {LEDGER.name}: {len(claims)} claims from {len({c.notebook for c in claims})} notebooks")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

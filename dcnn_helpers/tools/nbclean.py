"""Strip volatile metadata from saved notebooks: ``python -m dcnn_helpers.tools.nbclean notebooks/*.ipynb``.

Used by ``make course`` after executing the notebooks, so diffs show content, not timestamps or widget state.
Without the widget state, a saved widget output can only show "Error displaying widget: model not found" in
JupyterLab and its first text form on GitHub (a progress bar at 0%), so those outputs go too: progress bars are
dropped and interactive explorers leave a one-line note in their place.

It also holds what the notebook tools share: :func:`read_notebook` (one clear line for a file that is not an
nbformat 4 notebook), :func:`write_notebook` (atomic) and :func:`run_batch` (every notebook of a batch is processed
before the failures are reported, one line each).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .. import fileio

__all__ = ["VOLATILE_CELL_KEYS", "VOLATILE_NOTEBOOK_KEYS", "WIDGET_VIEW", "WIDGET_NOTE", "PROGRESS_BAR", "cell_tags",
           "check_notebook", "read_notebook", "write_notebook", "error_line", "run_batch", "volatile_metadata", "clean", "main"]

VOLATILE_CELL_KEYS = ("execution", "collapsed", "scrolled")
VOLATILE_NOTEBOOK_KEYS = ("widgets",)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "[Interactive widget: run the notebook to use it.]"
PROGRESS_BAR = re.compile(r"(it/s|s/it)\]")  # tqdm's text form ends with its rate, e.g. "[00:00<?, ?it/s]"


def cell_tags(cell: dict) -> list[str]:
    """The tags of a notebook cell (parsed JSON); empty when it has none."""
    return cell.get("metadata", {}).get("tags", [])


def _well_formed(cells: object) -> bool:
    """Cells as the tools read them: dicts with a cell type, dict metadata and a list of dict outputs (dict data)."""
    def cell_ok(cell: object) -> bool:
        outputs = cell.get("outputs", []) if isinstance(cell, dict) else None
        return (isinstance(cell, dict) and isinstance(cell.get("cell_type"), str)
                and isinstance(cell.get("metadata", {}), dict)
                and isinstance(outputs, list)
                and all(isinstance(out, dict) and isinstance(out.get("data", {}), dict) for out in outputs))

    return isinstance(cells, list) and all(cell_ok(cell) for cell in cells)


def check_notebook(nb: object, name: str = "nb") -> dict:
    """``nb`` if it is an nbformat 4 notebook as parsed JSON; else TypeError (not a dict) or ValueError, naming ``name``."""
    if not isinstance(nb, dict):
        raise TypeError(f"{name} must be a notebook as parsed JSON (a dict), got {type(nb).__name__}")
    version = nb.get("nbformat")
    if not isinstance(version, int):
        raise ValueError(f"{name}: not a Jupyter notebook (no nbformat field)")
    if version != 4:
        raise ValueError(f"{name}: an nbformat {version} notebook; these tools read nbformat 4 (convert it with "
                         f"`jupyter nbconvert --to notebook --nbformat 4 NOTEBOOK`)")
    if not isinstance(nb.get("metadata", {}), dict):
        raise ValueError(f"{name}: not a Jupyter notebook (its metadata is not an object)")
    if not _well_formed(nb.get("cells")):
        raise ValueError(f"{name}: not a Jupyter notebook (its cells are missing or malformed)")
    return nb


def read_notebook(path: str | Path) -> dict:
    """The nbformat 4 notebook at ``path`` as parsed JSON.

    A file that is not one raises ValueError with one line naming it and the problem (invalid JSON, another
    nbformat, malformed cells); a missing or unreadable file raises the usual OSError.
    """
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); is it a notebook?") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(nb, dict):
        raise ValueError(f"{path}: not a Jupyter notebook (JSON {type(nb).__name__}, not an object)")
    return check_notebook(nb, str(path))


def write_notebook(path: str | Path, nb: dict) -> Path:
    """Save ``nb`` (parsed JSON) at ``path`` atomically, in the layout Jupyter writes (indent 1, UTF-8)."""
    return fileio.write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def error_line(exc: BaseException) -> str:
    """``exc`` as one line that names the file: ``notebooks/x.ipynb: No such file or directory``."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def run_batch(prog: str, paths: Iterable[str | Path], action: Callable[[Path], str | None]) -> int:
    """Apply ``action`` to each path, printing what it returns; then one line per failure on stderr.

    Every path is tried even after a failure. Returns the exit status: 0 when all succeeded, else 1.
    """
    failures = []
    for path in paths:
        try:
            done = action(Path(path))
        except (OSError, ValueError) as exc:
            failures.append(f"{prog}: error: {error_line(exc)}")
            continue
        if done:
            print(done)
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


def volatile_metadata(nb: dict) -> list[str]:
    """Where ``nb`` (a notebook as parsed JSON) holds volatile metadata or widget outputs; empty when clean."""
    check_notebook(nb)
    found = [f"metadata.{key}" for key in VOLATILE_NOTEBOOK_KEYS if key in nb.get("metadata", {})]
    for index, cell in enumerate(nb.get("cells", [])):
        found += [f"cell {index}: metadata.{key}" for key in VOLATILE_CELL_KEYS if key in cell.get("metadata", {})]
        found += [f"cell {index}: a widget output" for out in cell.get("outputs", []) if WIDGET_VIEW in out.get("data", {})]
    return found


def _clean_outputs(outputs: list[dict]) -> list[dict]:
    cleaned = []
    for out in outputs:
        data = out.get("data", {})
        if WIDGET_VIEW not in data:
            cleaned.append(out)
        elif not PROGRESS_BAR.search("".join(data.get("text/plain", ""))):
            cleaned.append({"output_type": "display_data", "metadata": {}, "data": {"text/plain": WIDGET_NOTE}})
    return cleaned


def clean(path: Path) -> bool:
    """Remove volatile metadata and widget outputs from the notebook at ``path`` in place; returns whether it changed."""
    nb = read_notebook(path)
    if not volatile_metadata(nb):
        return False
    for key in VOLATILE_NOTEBOOK_KEYS:
        nb.get("metadata", {}).pop(key, None)
    for cell in nb.get("cells", []):
        for key in VOLATILE_CELL_KEYS:
            cell.get("metadata", {}).pop(key, None)
        if "outputs" in cell:
            cell["outputs"] = _clean_outputs(cell["outputs"])
    write_notebook(path, nb)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: clean every notebook named; exit status 1 when any failed (each reported in one line)."""
    prog = "python -m dcnn_helpers.tools.nbclean"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to clean in place")
    args = parser.parse_args(argv)
    if not args.notebooks:
        parser.print_usage(sys.stderr)
        return 2
    return run_batch(prog, args.notebooks, lambda path: f"cleaned {path}" if clean(path) else None)


if __name__ == "__main__":
    raise SystemExit(main())

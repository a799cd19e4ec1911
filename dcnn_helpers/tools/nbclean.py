"""Strip volatile metadata from saved notebooks: ``python -m dcnn_helpers.tools.nbclean notebooks/*.ipynb``.

Used by ``make course`` after executing the notebooks, so diffs show content, not timestamps or widget state.
Without the widget state, a saved widget output can only show "Error displaying widget: model not found" in
JupyterLab and its first text form on GitHub (a progress bar at 0%), so those outputs go too: progress bars are
dropped and interactive explorers leave a one-line note in their place.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

__all__ = ["VOLATILE_CELL_KEYS", "VOLATILE_NOTEBOOK_KEYS", "WIDGET_VIEW", "WIDGET_NOTE", "PROGRESS_BAR", "cell_tags",
           "volatile_metadata", "clean", "main"]

VOLATILE_CELL_KEYS = ("execution", "collapsed", "scrolled")
VOLATILE_NOTEBOOK_KEYS = ("widgets",)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "[Interactive widget: run the notebook to use it.]"
PROGRESS_BAR = re.compile(r"(it/s|s/it)\]")  # tqdm's text form ends with its rate, e.g. "[00:00<?, ?it/s]"


def cell_tags(cell: dict) -> list[str]:
    """The tags of a notebook cell (parsed JSON); empty when it has none."""
    return cell.get("metadata", {}).get("tags", [])


def volatile_metadata(nb: dict) -> list[str]:
    """Where ``nb`` (a notebook as parsed JSON) holds volatile metadata or widget outputs; empty when clean."""
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
    nb = json.loads(path.read_text(encoding="utf-8"))
    if not volatile_metadata(nb):
        return False
    for key in VOLATILE_NOTEBOOK_KEYS:
        nb.get("metadata", {}).pop(key, None)
    for cell in nb.get("cells", []):
        for key in VOLATILE_CELL_KEYS:
            cell.get("metadata", {}).pop(key, None)
        if "outputs" in cell:
            cell["outputs"] = _clean_outputs(cell["outputs"])
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m dcnn_helpers.tools.nbclean NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    for name in argv:
        if clean(Path(name)):
            print(f"cleaned {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

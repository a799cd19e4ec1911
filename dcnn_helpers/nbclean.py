"""Strip volatile metadata from saved notebooks: ``python -m dcnn_helpers.nbclean notebooks/*.ipynb``.

Used by ``make course`` after executing the notebooks, so diffs show content, not timestamps or widget state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

VOLATILE_CELL_KEYS = ("execution", "collapsed", "scrolled")
VOLATILE_NOTEBOOK_KEYS = ("widgets",)


def volatile_metadata(nb: dict) -> list[str]:
    """Where ``nb`` (a notebook as parsed JSON) holds volatile metadata; empty when clean."""
    found = [f"metadata.{key}" for key in VOLATILE_NOTEBOOK_KEYS if key in nb.get("metadata", {})]
    for index, cell in enumerate(nb.get("cells", [])):
        found += [f"cell {index}: metadata.{key}" for key in VOLATILE_CELL_KEYS if key in cell.get("metadata", {})]
    return found


def clean(path: Path) -> bool:
    """Remove volatile metadata from the notebook at ``path`` in place; returns whether it changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    if not volatile_metadata(nb):
        return False
    for key in VOLATILE_NOTEBOOK_KEYS:
        nb.get("metadata", {}).pop(key, None)
    for cell in nb.get("cells", []):
        for key in VOLATILE_CELL_KEYS:
            cell.get("metadata", {}).pop(key, None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m dcnn_helpers.nbclean NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    for name in argv:
        if clean(Path(name)):
            print(f"cleaned {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

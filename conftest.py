"""pytest set-up shared by unit tests and nbval runs of the notebooks."""

import os

# Progress bars and sizes follow the smoke profile unless a run asks for another one.
os.environ.setdefault("DCNN_PROFILE", "smoke")


def pytest_collection_modifyitems(items):
    """nbval: compare only stdout and results of checked cells, never stderr (warnings differ between machines)."""
    for item in items:
        parent = item.parent
        if hasattr(parent, "skip_compare") and "stderr" not in parent.skip_compare:
            parent.skip_compare = parent.skip_compare + ("stderr",)

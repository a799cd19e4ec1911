"""Find a Chromium for the browser test: ``python tests/browser/find_browser.py`` prints its path (exit 1: none).

Order: the environment variable ``DCNN_CHROMIUM``; Playwright's own Chromium (``python -m playwright install
chromium``); a system Chromium or Chrome on ``PATH`` (the Debian package ``chromium``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ENV_VAR = "DCNN_CHROMIUM"
SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
HOW_TO_GET_ONE = (
    "No Chromium found for the browser test. Get one of:\n"
    "  - Playwright's own:  .venv/bin/python -m playwright install chromium   (downloads about 150 MB)\n"
    "  - a system one:      sudo apt-get install chromium   (Debian/Ubuntu; other systems: their chromium package)\n"
    f"  - any Chromium/Chrome you have:  export {ENV_VAR}=/path/to/chrome"
)


def playwright_chromium() -> str | None:
    """Playwright's downloaded Chromium, when ``playwright install chromium`` has fetched it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as pw:
        path = pw.chromium.executable_path
    return path if Path(path).is_file() else None


def find_chromium() -> str | None:
    """Path of the Chromium to drive, or None (then print ``HOW_TO_GET_ONE``)."""
    named = os.environ.get(ENV_VAR)
    if named:
        found = shutil.which(named)
        if not found:
            raise FileNotFoundError(f"{ENV_VAR}={named!r} is not an executable file")
        return found
    return playwright_chromium() or next(filter(None, map(shutil.which, SYSTEM_NAMES)), None)


if __name__ == "__main__":
    path = find_chromium()
    print(path or HOW_TO_GET_ONE, file=sys.stdout if path else sys.stderr)
    raise SystemExit(0 if path else 1)

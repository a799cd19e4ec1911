"""Fixtures of the browser test (``make test-browser``): a throwaway JupyterLab server and headless Chromium.

Everything started here is stopped again in ``finally`` blocks, also when a check fails.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason='the browser test needs Playwright: pip install -e ".[browser]"')
from playwright.sync_api import Error as PlaywrightError, sync_playwright  # noqa: E402

from find_browser import HOW_TO_GET_ONE, find_chromium  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "build" / "browser"
CHROMIUM_ARGS = [  # quiet, offline-friendly headless Chromium; --no-sandbox because CI containers run as root
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LAB_SETTINGS = {  # user settings of the throwaway JupyterLab
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Render every cell (the default "full" windowing only renders cells near the viewport).
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
}
SERVER_START_TIMEOUT_S = 90


def pytest_addoption(parser):
    parser.addoption(
        "--notebook-dir", default=str(REPO_ROOT / "notebooks"),
        help="folder of the notebooks the browser test opens (default: notebooks/)",
    )
    parser.addoption(
        "--site-dir", default=None,
        help="check this already built site (make html) instead of building one from the notebooks",
    )


@pytest.fixture(scope="session")
def notebook_dir(pytestconfig) -> Path:
    return Path(pytestconfig.getoption("notebook_dir")).resolve()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: ``url(path)`` adds the token; ``api`` calls its REST API."""

    base: str
    token: str
    root: Path
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}{'&' if '?' in path else '?'}token={self.token}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(self.url(f"api/{path}"), method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")
        for kernel in self.api("kernels"):
            self.api(f"kernels/{kernel['id']}", method="DELETE")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _throwaway_env(home: Path) -> dict[str, str]:
    """The project environment (its Python first on PATH), with a throwaway home and Jupyter folders."""
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        IPYTHONDIR=str(home / "ipython"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        DCNN_PROFILE="smoke",
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_PREFER_ENV_PATH", None)
    for plugin, settings in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        target = Path(env["JUPYTER_CONFIG_DIR"], "lab", "user-settings", package, f"{name}.jupyterlab-settings")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(settings))
    return env


def _check_kernel_is_project_env(env: dict[str, str]) -> None:
    """The throwaway Jupyter sees a ``python3`` kernel that runs this environment's Python."""
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    specs = json.loads(out)["kernelspecs"]
    assert "python3" in specs, f"no python3 kernel visible to the throwaway Jupyter: {sorted(specs)}"
    argv0 = specs["python3"]["spec"]["argv"][0]
    # jupyter_client runs a bare "python" with the server's own interpreter, i.e. this environment.
    in_env = argv0 in ("python", "python3") or Path(argv0).resolve().is_relative_to(Path(sys.prefix).resolve())
    assert in_env, f"the python3 kernel runs {argv0}, not this environment ({sys.prefix})"


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after 10 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session", autouse=True)
def _teardown_on_sigterm():
    """``timeout``, a cancelled CI job or ``kill`` send SIGTERM: raise KeyboardInterrupt so teardown still runs."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="dcnn-browser-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(workdir, notebook_dir):
    """JupyterLab from this environment on a free local port with a random token, serving a copy of the notebooks.

    The copy keeps the committed notebooks untouched; the kernels run in the smoke profile.
    """
    root = workdir / "notebooks"
    shutil.copytree(notebook_dir, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    home = workdir / "home"
    home.mkdir()
    env = _throwaway_env(home)
    _check_kernel_is_project_env(env)
    port, token = free_port(), secrets.token_hex(16)
    log = workdir / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the test reads error outputs from the model
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, env=env, cwd=root, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = Lab(base=f"http://127.0.0.1:{port}", token=token, root=root, log=log)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT_S} s:\n{server.log_tail()}")
                time.sleep(0.5)
        yield server
    finally:
        try:
            if process.poll() is None:
                server.shutdown_kernels()
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        _stop(process)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright (see find_browser.py for which one)."""
    executable = find_chromium()
    if executable is None:
        pytest.fail(HOW_TO_GET_ONE, pytrace=False)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            with contextlib.suppress(PlaywrightError):
                chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that records uncaught JavaScript errors in ``page.js_errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    new_page = context.new_page()
    new_page.js_errors = []
    new_page.on("pageerror", lambda error: new_page.js_errors.append(str(error)))
    try:
        yield new_page
    finally:
        with contextlib.suppress(PlaywrightError):  # the browser may be gone already (Ctrl+C, SIGTERM)
            context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR


SCREENSHOTS: list[Path] = []


@pytest.fixture(scope="session")
def screenshots() -> list[Path]:
    """Screenshots taken in this run; listed at the end of the run."""
    return SCREENSHOTS


def pytest_terminal_summary(terminalreporter):
    if SCREENSHOTS:
        terminalreporter.write_sep("-", "browser screenshots")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site(workdir, notebook_dir, pytestconfig):
    """The static site of ``make html``, served locally: built from the notebooks into a temporary folder, or the
    one given with ``--site-dir``."""
    out = pytestconfig.getoption("site_dir")
    if out is None:
        workshop = pytest.importorskip("dcnn_helpers.tools.workshop")
        out = workdir / "site"
        started = time.monotonic()
        workshop.build_site(out, source=notebook_dir)
        print(f"site built in {time.monotonic() - started:.0f} s")
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

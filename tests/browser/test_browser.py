"""The course as a learner sees it, in headless Chromium (``make test-browser``; fixtures in conftest.py).

For every notebook with widgets: open it in JupyterLab, Run -> Run All Cells from the menu, wait until the kernel
is idle, check that no cell shows an error, then move each explorer's main slider with the keyboard and check that
the figure it drives is redrawn. Then the static site of ``make html``: the index links every notebook, every page
loads, the maths is typeset and no image is broken. Uncaught JavaScript errors fail every test.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

EXPECTED_EXPLORERS = ("01", "02", "04")  # notebooks whose explorers the course promises (issue 13)
WIDGET_CODE = re.compile(r"\bipywidgets\b|\binteract(ive)?\(")
KERNEL_START_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_S = 240  # a smoke-profile notebook takes under a minute on 2 quiet cores
REDRAW_TIMEOUT_S = 60
TRACEBACK = "Traceback (most recent call last)"
RAW_TEX = re.compile(r"\$\$|\\[A-Za-z]+|\$[^$\n]+\$")

# In the page: state of the open notebook (prompts, kernel indicator, error outputs of the model and on screen).
NOTEBOOK_STATE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
    .map(p => p.innerText.trim());
  const indicator = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const cells = panel && panel.content && panel.content.model ? [...panel.content.model.cells] : [];
  const errors = [];
  cells.forEach((cell, index) => {
    for (const out of (cell.toJSON().outputs || [])) {
      if (out.output_type === 'error') errors.push(`cell ${index}: ${out.ename}: ${out.evalue}`);
    }
  });
  const shown = [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(o => o.innerText).filter(text => text.includes('TRACEBACK'));
  return {prompts, kernel: indicator ? indicator.dataset.status : null, errors, shown};
}""".replace("TRACEBACK", TRACEBACK)

# In the page: the images an element (a cell's outputs) shows, '' for one not (yet) rendered.
IMAGES_JS = """el => [...el.querySelectorAll('img')]
  .map(img => img.complete && img.naturalWidth > 0 ? img.src : '')"""

# In the page: the first traceback an element (a cell's outputs) shows, '' when none.
TRACEBACK_JS = """el => ([...el.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map(o => o.innerText).find(text => text.includes('TRACEBACK')) || '')""".replace("TRACEBACK", TRACEBACK)


def _notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def has_widgets(path: Path) -> bool:
    """Whether a notebook builds an ipywidgets explorer: its code uses ipywidgets or ``interact``.

    Saved widget views alone do not count: tqdm progress bars are widgets too, but have no slider to move.
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    return any(WIDGET_CODE.search("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code")


def pytest_generate_tests(metafunc):
    folder = Path(metafunc.config.getoption("notebook_dir")).resolve()
    if "widget_notebook" in metafunc.fixturenames:
        found = [p for p in _notebooks(folder) if has_widgets(p)]
        metafunc.parametrize("widget_notebook", found, ids=[p.stem for p in found])
    if "site_notebook" in metafunc.fixturenames:
        found = _notebooks(folder)
        metafunc.parametrize("site_notebook", found, ids=[p.stem for p in found])


def test_promised_explorers_are_found(notebook_dir):
    """Each of the notebooks with promised explorers that exists is picked up as a widget notebook."""
    missing = [p.name for p in _notebooks(notebook_dir) if p.name[:2] in EXPECTED_EXPLORERS and not has_widgets(p)]
    assert not missing, f"these notebooks should have an ipywidgets explorer but build none: {missing}"


# --- JupyterLab -------------------------------------------------------------------------------------------------


def _kernel_state(lab, name: str) -> str | None:
    sessions = [s for s in lab.api("sessions") if s["path"] == name and s.get("kernel")]
    return sessions[0]["kernel"]["execution_state"] if sessions else None


def _wait(condition, timeout_s: float, message, poll_s: float = 0.5):
    """Poll ``condition()`` until it returns something truthy; fail with ``message()`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(message())
        time.sleep(poll_s)


def _open_notebook(page, lab, name: str) -> None:
    page.goto(lab.url(f"lab/workspaces/{Path(name).stem}/tree/{name}?reset"))
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=KERNEL_START_TIMEOUT_S * 1000)
    page.keyboard.press("Control+b")  # hide the file browser: wider notebook in the screenshot

    def ready():
        state = page.evaluate(NOTEBOOK_STATE_JS)
        return state["kernel"] == "idle" and _kernel_state(lab, name) == "idle"

    _wait(ready, KERNEL_START_TIMEOUT_S, lambda: f"the kernel of {name} did not start:\n{lab.log_tail()}")


def _menu(page, menu: str, item: str) -> None:
    """Click ``item`` in the menu bar's ``menu``, as a user would."""
    menu_label = page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$"))
    page.locator(".lm-MenuBar-item", has=menu_label).click()
    item_label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$"))
    page.locator(".lm-Menu-item", has=item_label).click()


def _run_all_from_menu(page, name: str) -> None:
    """Clear the saved outputs (so every prompt and output seen later is from this run), then run all cells."""
    _menu(page, "Edit", "Clear Outputs of All Cells")
    _wait(lambda: all(p == "[ ]:" for p in page.evaluate(NOTEBOOK_STATE_JS)["prompts"]), 10,
          lambda: f"{name}: Edit > Clear Outputs of All Cells left execution counts")
    _menu(page, "Run", "Run All Cells")


def _wait_until_run(page, lab, name: str) -> dict:
    """Wait until every code cell ran (or an error stopped the run) and the kernel is idle; the final state."""
    started = time.monotonic()
    last = {}

    def finished():
        last.update(page.evaluate(NOTEBOOK_STATE_JS))
        if not last["prompts"] or "[*]:" in last["prompts"]:
            return None
        if last["kernel"] != "idle" or _kernel_state(lab, name) != "idle":
            return None
        all_ran = all(re.fullmatch(r"\[\d+\]:", p) for p in last["prompts"])
        return dict(last) if all_ran or last["errors"] or last["shown"] else None

    def timeout_message():
        waiting = [i for i, p in enumerate(last.get("prompts", [])) if not re.fullmatch(r"\[\d+\]:", p)]
        return (f"{name}: not finished after {RUN_ALL_TIMEOUT_S} s (kernel {last.get('kernel')}; code cells "
                f"not run yet: {waiting})")

    state = _wait(finished, RUN_ALL_TIMEOUT_S, timeout_message)
    print(f"{name}: ran all cells in {time.monotonic() - started:.0f} s")
    return state


def _explorers(page):
    """(cell, main slider handle) for every code cell whose outputs hold a slider: its first handle."""
    found = []
    for cell in page.locator(".jp-NotebookPanel .jp-CodeCell").all():
        handles = cell.locator(".jp-Cell-outputWrapper .noUi-handle[role=slider]")
        if handles.count():
            found.append((cell, handles.first))
    return found


def _move_slider_and_check_redraw(page, lab, name: str, index: int, cell, handle) -> None:
    outputs = cell.locator(".jp-Cell-outputWrapper")
    before = outputs.evaluate(IMAGES_JS)
    assert before and all(before), f"{name}, explorer {index}: shows no figure next to its slider"
    handle.scroll_into_view_if_needed()
    value, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    key = "ArrowLeft" if float(value) >= float(top) else "ArrowRight"
    handle.focus()
    page.keyboard.press(key)
    moved = handle.get_attribute("aria-valuenow")
    assert moved != value, f"{name}, explorer {index}: {key} did not move the slider (stays at {value})"

    def redrawn():
        failure = outputs.evaluate(TRACEBACK_JS)
        if failure:
            pytest.fail(f"{name}, explorer {index}: moving the slider to {moved} shows an error:\n{failure[-800:]}")
        now = outputs.evaluate(IMAGES_JS)
        return now and all(now) and now != before and _kernel_state(lab, name) == "idle"

    _wait(redrawn, REDRAW_TIMEOUT_S,
          lambda: f"{name}, explorer {index}: the figure did not change within {REDRAW_TIMEOUT_S} s after the "
                  f"slider moved from {value} to {moved} ({key})")


def test_widget_notebook_in_jupyterlab(lab, page, widget_notebook, screenshot_dir, screenshots):
    name = widget_notebook.name
    try:
        _open_notebook(page, lab, name)
        _run_all_from_menu(page, name)
        state = _wait_until_run(page, lab, name)
        assert not state["errors"] and not state["shown"], (
            f"{name} shows errors: " + "; ".join(state["errors"] or [s[-500:] for s in state["shown"]]))
        explorers = _explorers(page)
        assert explorers, f"{name} builds widgets but shows no slider to move"
        for index, (cell, handle) in enumerate(explorers):
            _move_slider_and_check_redraw(page, lab, name, index, cell, handle)
        shown = page.evaluate(NOTEBOOK_STATE_JS)["shown"]
        assert not shown, f"{name}: an explorer shows an error after its slider moved: {shown[0][-500:]}"
        explorers[0][0].locator(".jp-Cell-outputWrapper").scroll_into_view_if_needed()
    finally:
        path = screenshot_dir / f"{widget_notebook.stem}.png"
        try:
            page.screenshot(path=str(path))
            screenshots.append(path)
        except PlaywrightError as error:  # keep the check's own failure, not the screenshot's
            print(f"no screenshot of {name}: {error}")
        if page.js_errors:  # shown with an earlier failure too: they may be its cause
            print(f"{name}: uncaught JavaScript errors on the page: {page.js_errors}")
        lab.shutdown_kernels()
    assert not page.js_errors, f"{name}: uncaught JavaScript errors on the page: {page.js_errors}"


# --- the static site of `make html` -------------------------------------------------------------------------------

MATHJAX_TIMEOUT_S = 30
# In the page: '' once MathJax has typeset the page, else what went wrong.
MATHJAX_DONE_JS = """() => new Promise(resolve => {
  if (!window.MathJax || !window.MathJax.Hub) { resolve('MathJax did not load'); return; }
  const timer = setTimeout(() => resolve('MathJax did not finish within TIMEOUT s'), TIMEOUT * 1000);
  // Block bodies: a MathJax callback that returns a callback waits for it (here: forever).
  MathJax.Hub.Register.MessageHook('file load error', message => { resolve(`MathJax could not load ${message[1]}`); });
  MathJax.Hub.Register.StartupHook('End', () => { MathJax.Hub.Queue(() => { clearTimeout(timer); resolve(''); }); });
})""".replace("TIMEOUT", str(MATHJAX_TIMEOUT_S))

# In the page: the text of markdown cells outside code, the typeset and broken maths, and broken images.
SITE_PAGE_JS = """() => {
  const skip = 'code, pre, script, style, .MJX_Assistive_MathML';
  const texts = [];
  for (const cell of document.querySelectorAll('.jp-MarkdownCell')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.closest(skip)) texts.push(node.textContent);
    }
  }
  return {
    text: texts.join(' '),
    typeset: document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML, mjx-container').length,
    mathErrors: [...document.querySelectorAll('.MathJax_Error, merror')].map(e => e.textContent),
    broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
      .map(i => (i.getAttribute('src') || '').slice(0, 80)),
  };
}"""


def _record_failed_requests(page) -> list[str]:
    """Pages, scripts, styles and images the page asked for and did not get (MathJax falls back on missing fonts)."""
    failed = []

    def check(request, why):
        if request.url.startswith("http") and request.resource_type != "font":
            failed.append(f"{request.url} ({why})")

    page.on("requestfailed", lambda request: check(request, request.failure))
    page.on("response", lambda response: response.status >= 400 and check(response.request, response.status))
    return failed


def test_site_index_links_every_notebook(site, page, notebook_dir):
    response = page.goto(f"{site}/index.html")
    assert response and response.ok, f"the site's index did not load: {response and response.status}"
    links = set(page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"))
    expected = {f"{p.stem}.html" for p in _notebooks(notebook_dir)}
    assert expected <= links, f"the index does not link {sorted(expected - links)}"
    assert not page.js_errors, f"index.html: uncaught JavaScript errors: {page.js_errors}"


def _raw_tex_places(text: str) -> list[str]:
    """Where raw TeX shows in ``text``, each place once with some context."""
    places, end = [], -1
    for match in RAW_TEX.finditer(text):
        if match.start() > end:
            places.append("..." + " ".join(text[max(0, match.start() - 50):match.end() + 60].split()) + "...")
        end = match.end() + 60
    return places


def test_site_page(site, page, site_notebook):
    name = f"{site_notebook.stem}.html"
    failed = _record_failed_requests(page)
    response = page.goto(f"{site}/{name}")
    assert response and response.ok, f"{name} did not load: {response and response.status}"
    problems = [page.evaluate(MATHJAX_DONE_JS)]
    found = page.evaluate(SITE_PAGE_JS)
    raw = _raw_tex_places(found["text"])
    problems.append(raw and f"maths not typeset, raw TeX visible in {len(raw)} places: " + " | ".join(raw[:3]))
    problems.append(found["mathErrors"] and f"MathJax errors: {found['mathErrors'][:5]}")
    markdown = "".join("".join(c["source"]) for c in json.loads(site_notebook.read_text(encoding="utf-8"))["cells"]
                       if c["cell_type"] == "markdown")
    problems.append("$" in markdown and not found["typeset"] and "the notebook has maths, the page shows none typeset")
    problems.append(found["broken"] and f"broken images: {found['broken']}")
    problems.append(failed and f"files that did not load: {failed}")
    problems.append(page.js_errors and f"uncaught JavaScript errors: {page.js_errors}")
    problems = [p for p in problems if p]
    if problems:
        pytest.fail(f"{name}:\n  " + "\n  ".join(problems))

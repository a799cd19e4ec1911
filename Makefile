# Two commands for learners: `make lab` and `make test`. See README.md.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PROFILE ?= laptop
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg \
               --nbval-cell-timeout 600 -p no:cacheprovider

.PHONY: help setup lab test unit nbval course student html timings colab envcheck clean

help:
	@echo "make lab                  set up .venv (first time only) and open the course in JupyterLab"
	@echo "make test                 set up .venv if needed, run unit tests and every notebook (smoke profile)"
	@echo "make course PROFILE=...   execute every notebook in place (smoke | laptop | gpu) and save it"
	@echo "make student              write student copies (solutions replaced by stubs) into student/"
	@echo "make html                 render the executed notebooks into a static site in site/"
	@echo "make timings PROFILE=...  run every notebook (nothing saved) and print its run time, for the guide"
	@echo "make colab                add Open-in-Colab badges and the Colab set-up cell (needs the repository URL)"
	@echo "make envcheck             print the environment report asked for in bug reports"

# The environment is rebuilt only when pyproject.toml changes (the stamp is newer otherwise).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

# LAB_ARGS passes options to JupyterLab, e.g. make lab LAB_ARGS="--port 8890 --no-browser".
# Jupyter refuses to run as root unless told; containers and cloud notebooks often are root.
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG) $(LAB_ARGS)

unit: $(STAMP)
	DCNN_PROFILE=smoke $(BIN)/python -m pytest tests --ignore=tests/browser

nbval: $(STAMP)
	DCNN_PROFILE=smoke $(BIN)/python -m pytest $(NBVAL_FLAGS) -v $(NOTEBOOKS)

test: unit nbval

# The browser test (tests/browser): the widget notebooks in JupyterLab and the `make html` site, in headless
# Chromium driven by Playwright (the `browser` extra). Which Chromium: see tests/browser/find_browser.py.
BROWSER_STAMP := $(VENV)/.installed-browser
$(BROWSER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,browser]"
	touch $(BROWSER_STAMP)

.PHONY: test-browser
test-browser: $(BROWSER_STAMP)
	DCNN_PROFILE=smoke $(BIN)/python -m pytest -p no:cacheprovider -v tests/browser

course: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb (profile $(PROFILE))"; \
		DCNN_PROFILE=$(PROFILE) $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=1800 --ExecutePreprocessor.kernel_name=python3 $$nb || exit 1; \
	done
	$(BIN)/python -m dcnn_helpers.tools.nbclean $(NOTEBOOKS)

student: $(STAMP)
	$(BIN)/python -m dcnn_helpers.tools.workshop student student

html: $(STAMP)
	$(BIN)/python -m dcnn_helpers.tools.workshop html site

timings: $(STAMP)
	$(BIN)/python -m dcnn_helpers.tools.workshop timings --profile $(PROFILE)

# The repository URL comes from [project.urls] Repository in pyproject.toml; re-execute the notebooks afterwards.
colab: $(STAMP)
	$(BIN)/python -m dcnn_helpers.tools.colab $(NOTEBOOKS)

envcheck: $(STAMP)
	$(BIN)/python -m dcnn_helpers.envcheck

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info student site

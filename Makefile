# Two commands for learners: `make lab` and `make test`. See README.md.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PROFILE ?= laptop
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg \
               --nbval-cell-timeout 600 -p no:cacheprovider

# What `make lab` installs: the package (editable) with these extras, pinned by the lock (`make lock` refreshes
# it). LOCK= installs unlocked, the newest releases allowed by pyproject.toml (the weekly CI run does that).
# WHEELHOUSE=DIR installs from a folder made by `make wheelhouse`, without internet. TORCH=cpu takes PyTorch's
# CPU-only Linux wheels (much smaller; macOS and Windows wheels from PyPI are CPU-only anyway).
EXTRAS     ?= lab,test,tools
LOCK       ?= requirements/lock.txt
WHEELHOUSE ?=
TORCH      ?=
CPU_INDEX  := https://download.pytorch.org/whl/cpu
PIP_SOURCES := $(if $(WHEELHOUSE),--no-index --find-links $(WHEELHOUSE)) \
               $(if $(filter cpu,$(TORCH)),--extra-index-url $(CPU_INDEX))
PIP_INSTALL := $(BIN)/python -m pip install --quiet $(PIP_SOURCES) $(if $(LOCK),--constraint $(LOCK))
STAMP := $(VENV)/.installed-$(if $(LOCK),$(notdir $(basename $(LOCK))),unlocked)

.PHONY: help setup lab test unit nbval course student html book timings colab envcheck lock wheelhouse gpu-check clean

help:
	@echo "make lab                  set up .venv (first time only) and open the course in JupyterLab"
	@echo "make test                 set up .venv if needed, run unit tests and every notebook (smoke profile)"
	@echo "make course PROFILE=...   execute every notebook in place (smoke | laptop | gpu) and save it"
	@echo "make student              write student copies (solutions replaced by stubs) into student/"
	@echo "make html                 render the executed notebooks into a static offline site in site/"
	@echo "make book                 build the public site (Jupyter Book: search, launch buttons) in build/book/"
	@echo "make timings PROFILE=...  run every notebook (nothing saved) and print its run time, for the guide"
	@echo "make colab                add Open-in-Colab badges and the Colab set-up cell (needs the repository URL)"
	@echo "make envcheck             print the environment report asked for in bug reports"
	@echo "make gpu-check OUT=DIR    on a bare CUDA machine: every notebook (gpu profile) and the speed run, into DIR"
	@echo "make lock                 refresh requirements/lock.txt, the pinned versions make lab installs"
	@echo "make wheelhouse DIR=...   download every wheel for an offline room; then make lab WHEELHOUSE=..."
	@echo "options: LOCK= (unlocked)  WHEELHOUSE=DIR (offline)  TORCH=cpu (CPU-only PyTorch on Linux)"

# The environment is rebuilt when pyproject.toml or the lock changes (the stamp is newer otherwise).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(WHEELHOUSE),,$(BIN)/python -m pip install --quiet --upgrade pip)
	$(PIP_INSTALL) -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

# The lock pins every package for Python 3.10 and later on Linux, macOS and Windows (uv's universal resolution),
# within any constraints pip is configured with on this machine (so the lock stays installable here).
LOCK_FILE := requirements/lock.txt
SITE_CONSTRAINTS = $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^global\.constraint='\(.*\)'$$/\1/p") \
                    $(PIP_CONSTRAINT)
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv>=0.5"
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.10 --quiet \
		--extra lab --extra test --extra tools --extra browser \
		$(foreach c,$(SITE_CONSTRAINTS),--constraint $(c)) \
		--custom-compile-command "make lock" --output-file $(LOCK_FILE)
	@echo "Wrote $(LOCK_FILE). Check it with make test, then commit it."

# Wheels for this platform and Python (run it on a machine like the room's), pinned by the lock; TORCH=cpu for
# the small CPU-only PyTorch. Copy DIR and the course to each machine, then: make lab WHEELHOUSE=DIR
DIR ?=
wheelhouse:
	@test -n "$(DIR)" || { echo "usage: make wheelhouse DIR=/path/to/folder [TORCH=cpu]"; exit 2; }
	$(PYTHON) -m pip download --quiet --dest $(DIR) $(if $(filter cpu,$(TORCH)),--extra-index-url $(CPU_INDEX)) \
		$(if $(LOCK),--constraint $(LOCK)) ".[$(EXTRAS)]" pip "setuptools>=77"
	@echo "$$(ls $(DIR) | wc -l) files in $(DIR); on each machine: make lab WHEELHOUSE=$(DIR)"

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
	$(PIP_INSTALL) -e ".[$(EXTRAS),browser]"
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
	$(BIN)/python -m dcnn_helpers.tools.claims

student: $(STAMP)
	$(BIN)/python -m dcnn_helpers.tools.workshop student student

html: $(STAMP)
	$(BIN)/python -m dcnn_helpers.tools.workshop html site

# The public site (Jupyter Book 1, own environment: it renders the committed outputs, executes nothing).
BOOK_VENV := .venv-book
$(BOOK_VENV)/.installed: requirements/book.txt
	test -x $(BOOK_VENV)/bin/python || $(PYTHON) -m venv $(BOOK_VENV)
	$(BOOK_VENV)/bin/python -m pip install --quiet -r requirements/book.txt
	touch $@

book: $(BOOK_VENV)/.installed
	$(BOOK_VENV)/bin/jupyter-book build . --config book/_config.yml --toc book/_toc.yml --path-output build/book
	@echo "Open build/book/_build/html/index.html"

timings: $(STAMP)
	$(BIN)/python -m dcnn_helpers.tools.workshop timings --profile $(PROFILE)

# The repository URL comes from [project.urls] Repository in pyproject.toml; re-execute the notebooks afterwards.
colab: $(STAMP)
	$(BIN)/python -m dcnn_helpers.tools.colab $(NOTEBOOKS)

envcheck: $(STAMP)
	$(BIN)/python -m dcnn_helpers.envcheck

clean:
	rm -rf $(VENV) $(BOOK_VENV) .pytest_cache build *.egg-info student site

# The GPU check runs where there is no venv and no internet: plain python3 with torch. WHEELS (optional) is a
# folder of the notebook packages' wheels (see CONTRIBUTING.md), installed into SITE; DATA the folder whose cifar10/
# holds the CIFAR-10 cache. GPU_CHECK_ARGS passes options, e.g. GPU_CHECK_ARGS="--tasks speedrun 07 --against airbench".
SITE ?= /tmp/dcnn-site
GPU_CHECK_ARGS ?=
gpu-check:
	@test -n "$(OUT)" || { echo "usage: make gpu-check OUT=DIR [DATA=DIR] [WHEELS=DIR] [GPU_CHECK_ARGS=...]"; exit 2; }
	$(if $(WHEELS),$(PYTHON) -m pip install -q --no-index --no-deps --no-compile --upgrade --target $(SITE) $(WHEELS)/*.whl)
	PYTHONPATH=$(SITE):$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} PATH=$(SITE)/bin:$$PATH $(if $(DATA),DCNN_DATA=$(DATA)) \
		$(PYTHON) -m dcnn_helpers.tools.gpucheck --out $(OUT) $(GPU_CHECK_ARGS)

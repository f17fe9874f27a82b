# Every target does its own set-up: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install schemas bench bench-online bench-batch clean lab screenshots

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=python3.x)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/endpoints demo

# Two workers (pytest-xdist), a module on one worker each: measured 9.4 min on 2 cores against
# 16.7 min in one process; three workers were slower (10 min): the tests' own processes want the cores.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

schemas: $(STAMP)
	$(BIN)/python -m toolkit.schemas docs/schemas

# JupyterLab on notebooks/ (each notebook keeps its own workspace in notebooks/workspaces/).
lab: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[notebook]'
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

# The README's wizard and dashboard images, taken in headless Chromium (needs chromium + chromedriver).
screenshots: $(STAMP)
	NOTEBOOK_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_notebook_browser.py

bench-online: $(STAMP)
	$(BIN)/python bench/online.py

bench-batch: $(STAMP)
	$(BIN)/python bench/batch.py

bench: bench-online bench-batch

clean:
	rm -rf $(VENV) build *.egg-info

# Two commands (see README):
#   make serve   set everything up, build the site and serve it at http://127.0.0.1:8000
#   make test    set everything up and run the whole test suite (pages, lessons, site, browser)
# Set-up is incremental: the venv and node_modules are rebuilt only when their lock files change.

PYTHON ?= python3
# An extra package index for pip, e.g. torch's CPU build (the default torch wheel on Linux is a
# CUDA build of several GB, see README):  make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
PIP_INDEX_ARGS := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
# Material prints a notice about its successor on every build; it says nothing about this site.
export NO_MKDOCS_2_WARNING := 1
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: setup serve build test test-slow clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(PIP_INDEX_ARGS) -r requirements.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

serve: setup
	$(BIN)/mkdocs serve --strict

build: setup
	$(BIN)/mkdocs build --strict

# Test files run in parallel, one per core (pytest-xdist; a file's tests stay together, so a page's
# examples run in order). TEST_JOBS=0 runs everything in this one process.
TEST_JOBS ?= auto
test: setup
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder

test-slow: setup
	$(BIN)/pytest -m slow

clean:
	rm -rf site .pytest_cache

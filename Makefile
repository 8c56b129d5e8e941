# mlp-roadmap: two commands for a fresh machine (Python >= 3.10 and make)
#   make demo   set up .venv and run the main job on the bundled default data
#   make test   set up .venv and run the full default test suite (the CI gate)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.mlp-roadmap-installed
TORCH_VERSION ?= 2.13.0
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export PYTHONHASHSEED ?= 0
export MPLBACKEND ?= Agg

.PHONY: setup demo test check-sync lint pytest docs lab clean help

help:
	@sed -n '1,4p' Makefile

# Idempotent: the stamp is refreshed only when pyproject.toml changes. A torch that is already
# importable in the venv (e.g. a CUDA build you installed yourself) is kept.
setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null \
	  && echo "setup: keeping installed torch $$($(PY) -c 'import torch; print(torch.__version__)')" \
	  || $(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)
	@echo "setup: $(VENV) ready"

demo: setup
	@$(BIN)/mlp quickstart --out demo_output

# The CI gate: notebooks clean, library in sync, lint, then every test (incl. all notebooks).
test: setup check-sync lint pytest

check-sync:
	@PATH=$(BIN):$$PATH bash tools/check_sync.sh

lint:
	@$(BIN)/ruff check nbs tests benchmarks tools
	@$(BIN)/ruff format --check nbs tests benchmarks tools

pytest:
	@$(PY) -m pytest -n 2 --durations=15 tests

docs: setup
	@$(PY) tools/build_docs.py --out _site
	@echo "docs: open _site/index.html"

lab: setup
	@$(BIN)/jupyter lab nbs

clean:
	rm -rf _docs _proc _site demo_output .pytest_cache

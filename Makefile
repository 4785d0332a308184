# nn-harness: every target creates the virtual environment on first use.
# Run `make help` to list the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k data -x"`
PYTEST_ARGS ?=
# the tested versions of every dependency (`make lock` regenerates it): the same environment
# a year from now; LOCK= (empty) installs the newest versions pyproject.toml allows
LOCK   ?= constraints.txt
LOCK_ARG := $(if $(LOCK),-c $(LOCK),)

.DEFAULT_GOAL := help
.PHONY: help demo test test-slow lint typecheck ui dashboard bench lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(LOCK_ARG) -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)  ## run the main job on embedded data: the three claim reports (quick budget)
	$(BIN)/harness demo

test: $(STAMP)  ## run the fast test suite (slow studies excluded)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)  ## run only the slow tests (long studies, full budgets)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check models harness tests benchmarks
	$(BIN)/ruff format --check models harness tests benchmarks
	$(BIN)/mypy

ui: $(STAMP)  ## open the MLflow UI on the local store (http://127.0.0.1:5000)
	$(BIN)/harness ui

dashboard: $(STAMP)  ## open optuna-dashboard on the sweeps' Optuna storage (http://127.0.0.1:8080)
	$(BIN)/harness dashboard

lock: $(STAMP)  ## regenerate constraints.txt from the installed (tested) versions
	@{ echo "# The tested versions of every dependency, used by make (pip install -c constraints.txt)."; \
	   echo "# Regenerate with make lock after changing pyproject.toml."; \
	   $(BIN)/python -m pip freeze --exclude-editable | grep -v '^torch=='; } > constraints.txt
	@echo "wrote constraints.txt ($$(grep -vc '^#' constraints.txt) pinned packages)"

bench: $(STAMP)  ## speed benchmarks (installs the optional torch CPU build)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/zoo_vs_torch.py

clean:  ## remove the tracking store contents, reports and caches (keeps .venv)
	find mlruns -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf reports .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -exec rm -rf {} +

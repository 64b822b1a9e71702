# gtok: the two commands of the README.
#   make demo   set up (core only, offline) and run the whole pipeline on sample_data/
#   make test   set up (core + test + sam extras, pinned) and run lint, types and the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GTOK := $(VENV)/bin/gtok
OUT ?= out/demo

.PHONY: setup setup-test demo test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.core: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[test,sam]'
	touch $@ $(VENV)/.core

setup: $(VENV)/.core
setup-test: $(VENV)/.test

demo: setup
	bash scripts/demo.sh "$(GTOK)" "$(OUT)"

lint: setup-test
	$(VENV)/bin/ruff check gtok_cli tests benchmarks
	$(VENV)/bin/ruff format --check gtok_cli tests benchmarks
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -n 2 -q

bench: setup-test
	$(PY) benchmarks/run_all.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache

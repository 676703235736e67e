# Two commands set up everything on a fresh machine:
#   make demo   create .venv, install the runtime, run the main job on bundled data
#   make test   create .venv, install runtime + dev extras, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# torch is pinned first so that the CPU build on disk is used, not a multi-GB CUDA download.
$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/edge-fetal demo --overwrite

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo_out .pytest_cache .hypothesis

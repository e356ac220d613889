# Two set-up commands for a fresh machine: `make quickstart` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
# torch is pinned to the CPU build that lies on this machine's disk; a plain `torch`
# requirement in a fresh venv would resolve to a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install install-test quickstart test clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[minilm,report,openvino]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

quickstart: install
	$(BIN)/crossrank quickstart --data $(DATA)

test: install-test
	CROSSRANK_DATA=$(DATA) $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

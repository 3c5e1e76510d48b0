# Two commands for a newcomer: `make run` (collector + local probe + live view) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck install clean dashboards

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m probe live --config configs/probe.yaml --collector-config configs/collector.yaml

lint: $(STAMP)
	$(BIN)/ruff check probe collector tests bench dashboards

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/pytest

dashboards: $(STAMP)
	$(BIN)/python -m dashboards.build

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# Two commands for a newcomer: `make run` (collector + local probe + live view) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck install clean dashboards

# Debian ships venv's pip bootstrap separately (python3-venv); as root we install it, otherwise
# we say which package is missing instead of failing with a traceback.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; \
	  else echo "Python's venv is missing: sudo apt-get install python3-venv" >&2; exit 1; fi; }
	@echo "First run: installing Kuzot and its test tools into $(VENV) (a minute or two; once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --no-color -e '.[dev]'
	touch $(STAMP)
	@echo "Installed. Next time this step is skipped."

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

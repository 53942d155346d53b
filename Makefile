# PrinterMaster: `make demo` runs the branch box, `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types unit bench clean

$(STAMP): pyproject.toml bench/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./bench
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pm demo

test: lint types unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

# The benchmark is its own package (bench/, the `bench` extra); the dev install has it.
bench: $(STAMP)
	$(BIN)/pm bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

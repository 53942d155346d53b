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

# The official Socket.IO JavaScript client, for the interop tests (needs Node.js/npm;
# without them those tests are skipped and say why).
JS_STAMP := tests/js/node_modules/.installed
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tests/js --silent --no-audit --no-fund && touch $(JS_STAMP); \
	else echo "npm not found: the JavaScript client tests will be skipped"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(JS_STAMP)
	$(BIN)/pytest -q

# The benchmark is its own package (bench/, the `bench` extra); the dev install has it.
bench: $(STAMP)
	$(BIN)/pm bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/js/node_modules

# PrinterMaster: `make demo` runs the branch box, `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types unit bench clean fonts browser systemd-analyze

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

# Two test processes (pytest-xdist), a whole test file each: most tests wait on real
# sockets, timeouts and process starts, so two halve the wall time even on 2 cores.
# TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 2
unit: $(STAMP) $(JS_STAMP) fonts browser systemd-analyze
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadscope

# Fonts for the tests that print Arabic, Hebrew, Thai, Chinese and Japanese as images
# (docs/printers.md says which package covers which script). Installed with apt-get when
# missing and run as root; otherwise those tests are skipped and say why.
FONT_PACKAGES := fonts-dejavu-core fonts-noto-core fonts-wqy-microhei
FONT_FILES := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
	/usr/share/fonts/truetype/noto/NotoSansThai-Regular.ttf \
	/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
fonts:
	@missing=0; for f in $(FONT_FILES); do test -f $$f || missing=1; done; \
	if [ $$missing = 0 ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends $(FONT_PACKAGES) \
		|| { apt-get -o DPkg::Lock::Timeout=300 update && \
		apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends $(FONT_PACKAGES); } \
		|| echo "fonts not installed: the tests that need them will be skipped"; \
	else echo "$(FONT_PACKAGES) missing (not root): the tests that need them will be skipped"; fi

# Debian's Chromium, for the test that drives `pm tui --web` in a real browser (keys
# without a click, no request leaves 127.0.0.1). Installed like the fonts; without it
# that test is skipped and says why.
browser:
	@if command -v chromium >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends chromium \
		|| { apt-get -o DPkg::Lock::Timeout=300 update && \
		apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends chromium; } \
		|| echo "chromium not installed: the browser test will be skipped"; \
	else echo "chromium missing (not root): the browser test will be skipped"; fi

# `systemd-analyze verify` checks the unit `pm service install` writes
# (tests/e2e/test_service.py). Installed with apt-get (the systemd package) when missing
# and run as root; otherwise that test is skipped and says why.
systemd-analyze:
	@if command -v systemd-analyze >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends systemd \
		|| { apt-get -o DPkg::Lock::Timeout=300 update && \
		apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends systemd; } \
		|| echo "systemd not installed: the unit file test will be skipped"; \
	else echo "systemd-analyze missing (not root): the unit file test will be skipped"; fi

# The benchmark is its own package (bench/, the `bench` extra); the dev install has it.
bench: $(STAMP)
	$(BIN)/pm bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/js/node_modules

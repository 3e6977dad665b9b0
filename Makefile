# The two set-up commands (run, test) and the helpers they use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test check snippet snippet-check bench browser-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Running needs only Cartback itself; the tests add their own tools.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $(TEST_STAMP)

# The Shopify-like and WooCommerce-like demo stores (the tests' fakes of the platforms) run beside the
# collector on 127.0.0.1:8001 and :8002 and stop with it.
run: $(STAMP)
	$(BIN)/cartback migrate
	$(BIN)/cartback demo-setup
	$(BIN)/python -m tests.fakes.demo_stores data/demo-stores.json & stores=$$!; \
	  trap 'kill $$stores 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/cartback serve --host 127.0.0.1 --port 8000

# Debian's chromium for the browser tests (never a downloaded browser build).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and we are not root: install Debian's chromium" >&2; exit 1; fi; \
	fi
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = "0" ]; then apt-get install -y -qq wrk >/dev/null || true; fi
	@# Debian's SpamAssassin scores the reminders offline (tests/test_deliverable_messages.py).
	@if ! command -v spamassassin >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then (apt-get install -y -qq spamassassin >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq spamassassin >/dev/null)); \
	  else echo "spamassassin is missing and we are not root: install Debian's spamassassin" >&2; exit 1; fi; \
	fi
	@# The PgBouncer journey (tests/test_pgbouncer.py) starts Debian's pgbouncer in front of the test PostgreSQL.
	@if [ ! -x /usr/sbin/pgbouncer ] && ! command -v pgbouncer >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then apt-get install -y -qq pgbouncer >/dev/null || { apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null; }; \
	  else echo "pgbouncer is missing and we are not root: install Debian's pgbouncer" >&2; exit 1; fi; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

snippet: node_modules/.installed
	node snippet/build.mjs

# Fails when the committed build differs from a fresh one, or is over the size budget.
snippet-check: node_modules/.installed
	node snippet/build.mjs --check

# Lint and format (ruff), types (mypy, strict), and the layers of the package (import-linter).
check: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: check browser-deps snippet-check
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(TEST_STAMP) browser-deps
	$(BIN)/python bench/run_all.py

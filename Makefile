# Sprout's two sacred commands: `make demo` and `make test`. Both work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PORT ?= 8080
PYTEST_ARGS ?=
# Test workers for `make test`: most tests wait on processes and sockets, so three share two cores well.
# Tests in one xdist_group run on one worker (--dist loadgroup). TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 3

.PHONY: setup native demo test lint format services test-fast test-slow clean

# The demo needs Sprout's runtime dependencies only; the test tools (a much larger install) come with
# `make test`.
$(RUN_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Sprout needs Python >= 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing Sprout's runtime dependencies (log: $(VENV)/install.log) …"
	@$(BIN)/python -m pip install --no-compile --disable-pip-version-check -e . > $(VENV)/install.log 2>&1 \
		|| { tail -n 30 $(VENV)/install.log; echo "pip install failed; see $(VENV)/install.log"; exit 1; }
	@touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(DEV_STAMP)

setup: $(DEV_STAMP) native ## create .venv and install Sprout with its test tools

# Instant when the build matches the sources; without a C compiler the router stays pure Python.
native: $(DEV_STAMP) ## compile the router's per-request modules with mypyc (~40 s; pure Python is the fallback)
	@$(BIN)/python -m sprout.router.build_native > $(VENV)/native.log 2>&1 \
		&& tail -n 1 $(VENV)/native.log \
		|| { tail -n 5 $(VENV)/native.log; echo "the router runs as pure Python (log: $(VENV)/native.log)"; }

demo: $(RUN_STAMP) ## run the microsite on embedded defaults; Ctrl-C tears it down
	@PORT=$(PORT) $(BIN)/python scripts/foreground.py bash scripts/demo.sh

services: ## install/start the services the tests need (memcached, MariaDB, PostgreSQL, Redis)
	bash scripts/services.sh

lint: setup ## ruff + mypy (strict on src/sprout)
	$(BIN)/ruff check --no-cache src tests bench examples
	$(BIN)/ruff format --no-cache --check src tests bench examples
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

test: setup services lint ## the whole suite
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-fast: setup ## everything but the slow end-to-end tests
	$(BIN)/pytest -m 'not slow' $(PYTEST_ARGS)

test-slow: setup services ## only the slow end-to-end tests
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .sprout .pytest_cache .mypy_cache .ruff_cache

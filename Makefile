# herald: the single entry point for set-up, running and checking.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test browser test-unit test-integration test-e2e test-aiormq-latest lint format mypy bench clean up down

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/herald run

test: $(STAMP) browser
	$(BIN)/pytest -n 2 --dist loadgroup -q

# tests/browser drives Debian's headless Chromium through ChromeDriver (never a download):
# installed from Debian's packages when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing Debian's chromium and chromium-driver for tests/browser"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
	    --no-install-recommends chromium chromium-driver; \
	fi

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

test-e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

# The scheduler's frames publisher leans on aiormq's channel internals and pamqp's frame
# layout (both pinned in pyproject.toml): this runs its tests against the newest releases, in
# a virtualenv of its own, so trying an upgrade is one command.
LATEST := .venv-aiormq-latest
test-aiormq-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(LATEST)/bin/python -m pip install --quiet --upgrade aiormq pamqp aio-pika 2>&1 | grep -v "dependency conflicts\|requires aiormq\|requires pamqp" || true
	$(LATEST)/bin/python -m pip list 2>/dev/null | grep -iE '^(aiormq|pamqp|aio-pika) '
	$(LATEST)/bin/pytest -q -p no:cacheprovider tests/unit/test_scheduler_frames.py \
	  tests/integration/test_scheduler_frames.py tests/integration/test_scheduler_publisher.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	BIN=$(BIN) bash deploy/check.sh

up:
	docker compose -f deploy/compose.yaml up --build -d

down:
	docker compose -f deploy/compose.yaml down

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

mypy: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(LATEST) .mypy_cache .ruff_cache .pytest_cache

# herald: the single entry point for set-up, running and checking.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make test` prepares what the tests need on this machine: Chromium (tests/browser),
# promtool (deploy checks, the /metrics test) and the broker's management API.
.PHONY: install run test browser promtool broker-management test-unit test-integration test-e2e test-aiormq-latest lint format mypy bench clean up down

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/herald run

test: $(STAMP) browser promtool broker-management
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

# promtool comes with Debian's prometheus package: installed when missing.
promtool:
	@if ! command -v promtool >/dev/null 2>&1; then \
	  echo "installing Debian's prometheus package for promtool"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
	    --no-install-recommends prometheus; \
	fi

# The tests read queue depths and make vhosts through the management API (falling back to
# rabbitmqctl where they can); a broker on this machine whose plugin is off gets it enabled.
AMQP_HOST := $(shell python3 -c "import os,urllib.parse as u; print(u.urlsplit(os.environ.get('AMQP_URL','amqp://127.0.0.1:5672/')).hostname or '127.0.0.1')")
broker-management:
	@if ! (exec 3<>/dev/tcp/$(AMQP_HOST)/15672) 2>/dev/null; then \
	  if command -v rabbitmq-plugins >/dev/null 2>&1 && \
	     { [ "$(AMQP_HOST)" = 127.0.0.1 ] || [ "$(AMQP_HOST)" = localhost ]; }; then \
	    echo "enabling RabbitMQ's management plugin"; \
	    $(SUDO) rabbitmq-plugins enable rabbitmq_management >/dev/null; \
	    for _ in $$(seq 1 60); do (exec 3<>/dev/tcp/$(AMQP_HOST)/15672) 2>/dev/null && break; sleep 1; done; \
	  else \
	    echo "RabbitMQ's management API does not answer on $(AMQP_HOST):15672: tests fall back to rabbitmqctl where they can"; \
	  fi; \
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

lint: $(STAMP) promtool
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

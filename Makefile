# Mercato Scheduler — two commands on a fresh machine:
#   make run    set up and start the app on the embedded default (SQLite, local strategy)
#   make test   set up everything the suite needs and run it
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
SIZE ?= small
PYTEST_ARGS ?=

.PHONY: run test lint install services chromium migrate bench clean help

help:
	@echo "make run    - install, migrate and start the app (SQLite file under var/, local strategy)"
	@echo "make test   - install everything (incl. Chromium), start PostgreSQL/Redis, run the suite"
	@echo "make bench  - run the benchmarks (SIZE=small|full)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(VENV)/bin/mercato db upgrade

run: migrate
	$(VENV)/bin/mercato serve --host $(HOST) --port $(PORT)

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

services:
	@bash scripts/services.sh

# ruff (lint and format check) and mypy (strict on app/engine and app/domain) before the suite;
# the layer contract (import-linter) and the cycle check run inside it (tests/test_architecture.py).
lint: install
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench
	$(VENV)/bin/mypy app

test: install chromium services lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install services
	$(PIP) install --quiet -e '.[bench]'
	$(PY) -m bench --size $(SIZE)

clean:
	rm -rf $(VENV) var .pytest_cache

# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast test-web web-screenshots lint chaos bench clean venv

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Start a local Redis HA set and two chat servers; Ctrl-C stops everything.
run: $(STAMP)
	$(PY) deploy/redis-sentinel/redisset.py dev --dir .run

## The whole suite: lint, unit, integration, chaos (slow tests included), browser.
test: $(STAMP)
	$(MAKE) lint
	$(PY) -m pytest -q tests/unit
	$(PY) -m pytest -q tests/integration
	$(MAKE) test-web

## The web client in a real Chromium (skipped, with one line saying why, without one;
## CHAT_REQUIRE_BROWSER=1, as in CI, makes a missing browser a failure).
test-web: $(STAMP)
	@$(PY) -c 'import sys; from tests.web.conftest import chromium_path, HOW_TO_GET; \
		chromium_path() or print(HOW_TO_GET, file=sys.stderr)'
	$(PY) -m pytest -q tests/web

## docs/web-desktop.png and docs/web-phone.png, taken from the real page.
web-screenshots: $(STAMP)
	$(PY) -m tests.web.screenshot

## Only the fast unit tier.
test-fast: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache

# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run run-cluster test test-fast test-web web-screenshots lint chaos bench soak clean venv lock

venv: $(STAMP)

# requirements-dev.txt is the lock file (exact versions, hashes): nothing unpinned is installed.
$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $(STAMP)

LOCK_ARGS := --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--quiet --custom-compile-command "make lock"

## Resolve pyproject.toml's ranges into the lock files, keeping the pins already there;
## `make lock UPGRADE=--upgrade` moves every pin to the newest allowed version.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_ARGS) $(UPGRADE) -o requirements.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_ARGS) $(UPGRADE) \
		-o requirements-dev.txt
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $(STAMP)

## Start a local Redis HA set and two chat servers; Ctrl-C stops everything.
run: $(STAMP)
	$(PY) -m deploy.redis_sentinel.redisset dev --dir .run

## The same on a local Redis Cluster: 3 shards x (primary + 2 replicas) + two chat servers.
run-cluster: $(STAMP)
	$(PY) -m deploy.redis_cluster.clusterctl dev --dir .run-cluster

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
	$(VENV)/bin/lint-imports

## The suite, then a short soak (3 min, 30 s dedupe window): memory back after the window.
bench: $(STAMP)
	$(PY) -m bench --cluster
	$(PY) -m bench --soak 3 --soak-window-s 30

## The long soak of issue 14: 10 min at half the sustainable rate, 60 s window.
soak: $(STAMP)
	$(PY) -m bench --soak 10 --soak-window-s 60

clean:
	rm -rf $(VENV) .run .run-cluster .mypy_cache .ruff_cache .pytest_cache

# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast lint chaos bench soak clean venv

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Start a local Redis HA set and two chat servers; Ctrl-C stops everything.
run: $(STAMP)
	$(PY) deploy/redis-sentinel/redisset.py dev --dir .run

## The whole suite: lint, unit, integration, chaos (slow tests included).
test: $(STAMP)
	$(MAKE) lint
	$(PY) -m pytest -q tests/unit
	$(PY) -m pytest -q tests/integration

## Only the fast unit tier.
test-fast: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## The suite, then a short soak (3 min, 30 s dedupe window): memory back after the window.
bench: $(STAMP)
	$(PY) -m bench
	$(PY) -m bench --soak 3 --soak-window-s 30

## The long soak of issue 14: 10 min at half the sustainable rate, 60 s window.
soak: $(STAMP)
	$(PY) -m bench --soak 10 --soak-window-s 60

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache

# Two commands do the whole set-up on a fresh machine (Python 3.11+ and make):
#   make demo   install into .venv and run the demo city on the embedded default
#   make test   install into .venv and run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast openapi bench-routing bench-face bench-fares lint-imports clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/maas demo

# The full suite: embedded default and PostgreSQL + Redis (both must be reachable).
test: install
	$(BIN)/python -m pytest

# Without the slow real-feed tests, for the edit-test loop.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

openapi: install
	$(BIN)/python -m maas.openapi openapi/openapi.json

lint-imports: install
	$(BIN)/lint-imports

bench-routing: install
	$(BIN)/maas bench routing --feed ../shared/data/nyc-mta/subway.zip --date 2026-10-07 --queries 1000 --seed 1 --json

bench-face: install
	$(BIN)/python bench/face.py

bench-fares: install
	$(BIN)/python bench/fares.py

clean:
	rm -rf $(VENV) .maas .pytest_cache

# Two commands do the whole set-up on a fresh machine (Python 3.11+ and make):
#   make demo   install into .venv and run the demo city on the embedded default
#   make test   install into .venv and run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast openapi bench bench-routing bench-nyc bench-ferrobus bench-peer bench-face bench-fares bench-ticketing bench-clearing bench-cold-start lint-imports clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/maas demo

# The full suite: embedded default and PostgreSQL + Redis (both must be reachable), one worker per core
# (pytest-xdist; each worker has its own database and Redis database).
test: install
	$(BIN)/python -m pytest -n auto
	$(BIN)/python -m pytest -n auto $(CLOCK_SENSITIVE) -m "not slow" --clock-shift-days=365

# Every test that reads the clock (database, Redis, HTTP, jobs, real time) runs a second time a year
# ahead (time-machine moves this process's clock and its Python children's; Redis and PostgreSQL keep the
# machine's): nothing may depend on the day the suite runs.
CLOCK_SENSITIVE := tests/maas tests/ticketing tests/clearing tests/security tests/routing/test_realtime.py \
	tests/routing/test_search_realtime.py

# Without the slow real-feed tests, for the edit-test loop.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

openapi: install
	$(BIN)/python -m maas.openapi openapi/openapi.json

lint-imports: install
	$(BIN)/lint-imports

DATA ?= ../shared/data
NYC := $(DATA)/nyc-mta

bench-routing: install
	$(BIN)/maas bench routing --feed $(NYC)/subway.zip --date 2026-10-07 --queries 1000 --seed 1 --max-rides 3 --json

# The whole city (subway + six bus feeds, 8.0 M stop_times): the issue's headline benchmark.
bench-nyc: install
	$(BIN)/maas bench routing --feed $(NYC)/subway.zip --feed $(NYC)/bus_brooklyn.zip --feed $(NYC)/bus_bronx.zip \
	  --feed $(NYC)/bus_manhattan.zip --feed $(NYC)/bus_queens.zip --feed $(NYC)/bus_staten_island.zip \
	  --feed $(NYC)/bus_mta_bus_company.zip --date 2026-10-07 --queries 1000 --seed 1 --max-rides 3 --json

# Side by side with ferrobus (installed by the script itself; it is not a dependency of the project).
bench-ferrobus: install
	$(BIN)/python bench/routing_vs_ferrobus.py

# Every benchmark below plus bench/cold_start.py, the shared ferrobus harness and the load test, one JSON
# summary with the core count and load average (docs/benchmarks.md). BENCH_ARGS=--quick for a smoke run;
# the ferrobus comparisons need BENCH_PEER_PYTHON (a Python that imports ferrobus and osmium).
BENCH_OUT ?= bench-summary.json
BENCH_ARGS ?=
bench: install
	$(BIN)/python bench/run_all.py --out $(BENCH_OUT) $(if $(BENCH_PEER_PYTHON),--peer-python $(BENCH_PEER_PYTHON)) $(BENCH_ARGS)

# The shared peer harness (../shared/bench/README.md): ours and ferrobus interleaved on the same queries.
bench-peer: install
	$(BENCH_PEER_PYTHON) ../shared/bench/peer_ferrobus.py --network subway --project .

# First request after /health says ready against the hundredth (fresh kernel cache, restart, no warm-up).
bench-cold-start: install
	$(BIN)/python bench/cold_start.py

bench-ticketing: install
	$(BIN)/python bench/ticketing.py

bench-clearing: install
	$(BIN)/python bench/clearing.py

bench-face: install
	$(BIN)/python bench/face.py

bench-fares: install
	$(BIN)/python bench/fares.py

clean:
	rm -rf $(VENV) .maas .pytest_cache

# Issue 3: `maas plan --batch` (the real CLI) on 1000 random NYC queries, subway then whole city:
# every itinerary feasible and the earliest arrival equal to the reference search's (~11 min).
.PHONY: verify-nyc
verify-nyc: install
	$(BIN)/python bench/verify_batch.py --network both --queries 1000 --seed 1

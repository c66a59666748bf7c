# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# What the weekly pack's PDF needs at run time (WeasyPrint: Pango, HarfBuzz's subsetter; the
# CJK font its page names); the tests also need a browser and poppler's pdftotext/pdftoppm.
RUN_SYSTEM_PACKAGES := fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
SYSTEM_PACKAGES := $(RUN_SYSTEM_PACKAGES) chromium chromium-driver poppler-utils

.PHONY: run serve test system-packages run-system-packages screenshots bench bench-large clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

## run: install, then serve the embedded demo plant with its live simulator on :8050
run: $(VENV)/.runtime run-system-packages
	$(PY) app.py

## serve: serve the configured DATABASE_URL without the simulator
serve: $(VENV)/.runtime run-system-packages
	$(PY) app.py serve

## system-packages: the run-time ones, plus Chromium, its driver and poppler for the tests
## run-system-packages: CJK fonts and Pango for the weekly pack's PDF (installed when root)
system-packages: PACKAGES = $(SYSTEM_PACKAGES)
run-system-packages: PACKAGES = $(RUN_SYSTEM_PACKAGES)
system-packages run-system-packages:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages:$$missing (browser and PDF tests will skip; run as root to install)"; fi; \
	fi

## test: install everything the tests need, then run them
test: $(VENV)/.dev system-packages
	$(PY) -m pytest

## bench: the benchmarks' own tests, then W-S and W-M on SQLite and PostgreSQL, every variant side by side, then the load
## sweep and a 10-minute mixed load (screens, API clients, explorer) on PostgreSQL and Redis
BENCH_PG ?= postgresql+psycopg://postgres@127.0.0.1:5432
BENCH_REDIS ?= redis://127.0.0.1:6379/0
BENCH_DIR := instance/bench
bench: $(VENV)/.dev
	$(PY) -m pytest bench/tests
	mkdir -p $(BENCH_DIR)
	$(PY) -m bench.kpi_bench --workload W-S --url sqlite:///$(BENCH_DIR)/W-S.sqlite
	$(PY) -m bench.kpi_bench --workload W-S --url $(BENCH_PG)/floorlink_bench_ws
	$(PY) -m bench.kpi_bench --workload W-M --url sqlite:///$(BENCH_DIR)/W-M.sqlite --budget-s 300
	$(PY) -m bench.kpi_bench --workload W-M --url $(BENCH_PG)/floorlink_bench_wm --budget-s 300
	for url in sqlite:///$(BENCH_DIR)/W-S.sqlite $(BENCH_PG)/floorlink_bench_ws $(BENCH_PG)/floorlink_bench_wm; do $(PY) -m bench.explorer_bench --url $$url || exit 1; done
	$(PY) -m bench.kpis_by_groups
	$(PY) -m bench.load --seconds 60 --redis $(BENCH_REDIS)
	$(PY) -m bench.mixed --pg $(BENCH_PG) --redis $(BENCH_REDIS) --minutes 10

## bench-large: W-L on PostgreSQL (by hand: the first build takes about 20 minutes). The
## variants that hold the rows in memory run in groups, one process each: all at once do not
## fit in 24 GiB at W-L. Each group runs beside the project on the same data.
WL_URL = $(BENCH_PG)/floorlink_bench_wl
bench-large: $(VENV)/.dev
	$(PY) -m bench.kpi_bench --workload W-L --url $(WL_URL) --variants project --rounds 20
	$(PY) -m bench.kpi_bench --workload W-L --url $(WL_URL) --variants duckdb --rounds 10 --budget-s 900
	$(PY) -m bench.kpi_bench --workload W-L --url $(WL_URL) --variants memory-pandas,memory-probe \
	  --rounds 10 --budget-s 900
	$(PY) -m bench.kpi_bench --workload W-L --url $(WL_URL) \
	  --variants project-full,naive-pandas,sql-pushdown --rounds 5 --budget-s 60

## screenshots: regenerate docs/screenshots from a running demo plant
screenshots: $(VENV)/.dev system-packages
	$(PY) -m tools.screenshots --out docs/screenshots

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis

# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: browser demo test lint typecheck unit bench bench-engine bench-single bench-tdg bench-pacer bench-progress bench-run-memory bench-ledger-growth bench-parquet clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/phone-enrich demo

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/ruff format --check pipeline tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) browser
	$(BIN)/pytest -q

# The report.html test opens the page in headless Chromium: Debian's package, installed
# here when it is missing (root, or sudo).
browser:
	@command -v chromium >/dev/null || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -q && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

bench: $(STAMP)
	$(BIN)/python bench/bench_normalize.py

bench-engine: $(STAMP)
	$(BIN)/python bench/bench_engine.py

bench-single: $(STAMP)
	$(BIN)/python bench/bench_single.py

bench-tdg: $(STAMP)
	$(BIN)/python bench/bench_tdg_adaptive.py

bench-pacer: $(STAMP)
	$(BIN)/python bench/bench_pacer.py

# Peak RSS of whole runs (TCPA Authority against the emulator, and normalize-only) on
# 1M and 3M rows of the sample file: a few minutes.
bench-run-memory: $(STAMP)
	$(BIN)/python bench/bench_run_memory.py

bench-ledger-growth: $(STAMP)
	$(BIN)/python bench/bench_ledger_growth.py

bench-parquet: $(STAMP)
	$(BIN)/python bench/bench_parquet_memory.py

clean:
	rm -rf $(VENV) .phone-enrich .phone-enrich-demo out .pytest_cache .mypy_cache .ruff_cache

bench-progress: $(STAMP)
	$(BIN)/python bench/bench_progress.py

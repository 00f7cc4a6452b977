# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench bench-engine bench-single bench-tdg bench-pacer bench-parquet clean

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

unit: $(STAMP)
	$(BIN)/pytest -q

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

bench-parquet: $(STAMP)
	$(BIN)/python bench/bench_parquet_memory.py

clean:
	rm -rf $(VENV) .phone-enrich .phone-enrich-demo out .pytest_cache .mypy_cache .ruff_cache

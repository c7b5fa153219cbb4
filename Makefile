# `make demo` and `make test` set everything up on a fresh machine: they create
# .venv and install the pinned versions in constraints.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
# Test processes (pytest-xdist): one per core, at most 4 (each holds an engine), unless TEST_WORKERS
# says how many; TEST_WORKERS=0 runs the tests in this one process.
TEST_WORKERS ?= auto
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST  = $(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist worksteal
ADAPTER_FILES := $(shell find adapter -type f -not -path '*/build/*' -not -path '*.egg-info*' -not -name '*.pyc')

.PHONY: help venv demo test test-unit test-integration test-http bench clean

help:
	@echo "make demo   run the end-to-end demo (moto S3 -> loader -> dbt on embedded ClickHouse)"
	@echo "make test   run the test suite, a process per core (TEST_WORKERS=N; make test-unit, make test-integration: a part of it)"
	@echo "make test-http  the integration tests over HTTP (chdb_http: ClickHouse's HTTP interface over chDB)"
	@echo "make bench  benchmarks against baselines (BENCH_ITEMS, BENCH_CHANGES) -> bench/results.json"
	@echo "make clean  remove .venv and build output"

$(STAMP): pyproject.toml constraints.txt $(ADAPTER_FILES)
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "make needs Python 3.11 or later (the pinned versions of constraints.txt do); $(PYTHON) is older: run make PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[embedded,dbt,dev]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt --force-reinstall --no-deps ./adapter
	@rm -rf adapter/build adapter/*.egg-info
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo/demo.py

bench: $(STAMP)
	@# the loader's bytecode, as an installed wheel has it (an editable install has none where
	@# PYTHONDONTWRITEBYTECODE is set, and every command would compile its modules again)
	$(BIN)/python -m compileall -q loader
	$(BIN)/python bench/run.py

test: $(STAMP)
	$(PYTEST)

test-unit: $(STAMP)
	$(PYTEST) tests/unit

test-integration: $(STAMP)
	$(PYTEST) tests/integration

# The integration tests over HTTP, as against a ClickHouse server, where there is none: the engine
# in a process of its own behind ClickHouse's HTTP interface (loader/testing/chdb_http.py).
test-http: $(STAMP)
	$(BIN)/python -m dynamodb_cdc.testing.chdb_http -- $(PYTEST) tests/integration

clean:
	rm -rf $(VENV) build adapter/build adapter/*.egg-info *.egg-info .pytest_cache .hypothesis .demo target dbt_packages logs \
		examples/target examples/dbt_packages examples/logs

# Chorus: `make run` starts everything, `make test` runs every test. Nothing to install by hand:
# both create .venv with the interpreter named by PYTHON (3.11 or newer) and install into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Chorus needs Python 3.11 or newer; set PYTHON=python3.x")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/chorus dev

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks run as modules of the bench package: a script's folder on sys.path would let
# bench/calendar.py shadow the standard library's calendar module. Each prints every figure
# beside a floor measured in the same run (bench/benchkit.py); one at a time, since they share
# the machine with their floors. CHORUS_BENCH_QUICK=1 runs small sizes. bench.inventory runs
# bench.inventory_import at its end.
bench: install
	$(BIN)/python -m bench.outbox
	$(BIN)/python -m bench.inventory
	$(BIN)/python -m bench.calendar
	$(BIN)/python -m bench.approvals

clean:
	rm -rf $(VENV) .chorus .pytest_cache .mypy_cache .ruff_cache *.egg-info

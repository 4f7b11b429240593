# The two front-door commands: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Every package `make` installs, pinned: the versions CI tested (regenerate with `make lock`).
LOCK   := requirements/all.lock
LINTED := elegere_widgets tests benchmarks notebooks

.PHONY: run test test-fast bench lint format venv lock clean

# Reinstall only when the dependencies or their pins change.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

## make lock: re-resolve every extra ([all]) for Python 3.11 on Linux, keeping the current pins
## where they still fit (`make lock LOCK_ARGS=--upgrade` moves them all to the newest).
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra all --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --custom-compile-command 'make lock' \
		--quiet -o $(LOCK) $(LOCK_ARGS)

## make run: the service on the embedded SQLite store with the demo data, a demo SMTP server and
## the Voilà dashboard, signed in as the demo Workspace Admin (Ctrl-C stops it all).
## ELEGERE_PORT / VOILA_PORT pick the ports; `make run RUN_ARGS=--sign-in` shows the sign-in form.
run: venv
	$(BIN)/python -m elegere_widgets.dashboard.launch $(RUN_ARGS)

## make test: lint, then every test (PostgreSQL too when ELEGERE_TEST_DATABASE_URL is set), in
## TEST_PROCESSES processes (pytest-xdist; most tests wait on sockets and processes, not the CPU;
## each process has its own PostgreSQL database and Redis db, tests/fixtures/parallel.py).
## A module's tests stay in one process, so its service and browser start once.
## `make test TEST_PROCESSES=0` runs them in this process.
TEST_PROCESSES ?= 2
PYTEST := $(BIN)/pytest -n $(TEST_PROCESSES) --dist loadscope
test: venv lint
	$(PYTEST)

## make test-fast: the edit loop; skips the slow and the browser tests
test-fast: venv
	$(PYTEST) -m "not slow and not browser"

## make bench: each figure against a baseline measured in the same run (never part of make test)
bench: venv
	PYTHONPATH=. $(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

## make lint: ruff (rules and formatting), mypy --strict, and the layer contracts (import-linter)
lint: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format $(LINTED)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info

# The two front-door commands: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint format venv clean

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,audit,dashboard]'
	@touch $(STAMP)

venv: $(STAMP)

## make run: the service on the embedded SQLite store with the demo data, a demo SMTP server and
## the Voilà dashboard, signed in as the demo Workspace Admin (Ctrl-C stops it all).
## ELEGERE_PORT / VOILA_PORT pick the ports; `make run RUN_ARGS=--sign-in` shows the sign-in form.
run: venv
	$(BIN)/python -m elegere_widgets.dashboard.launch $(RUN_ARGS)

## make test: lint, then every test (PostgreSQL too when ELEGERE_TEST_DATABASE_URL is set)
test: venv lint
	$(BIN)/pytest

## make bench: each figure against a baseline measured in the same run (never part of make test)
bench: venv
	PYTHONPATH=. $(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check elegere_widgets tests benchmarks notebooks

format: venv
	$(BIN)/ruff format elegere_widgets tests benchmarks notebooks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

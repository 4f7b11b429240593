# The two front-door commands: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint format venv clean

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,audit,dashboard]'
	@touch $(STAMP)

venv: $(STAMP)

## make run: the service on the embedded SQLite store with the demo data (Ctrl-C stops it)
run: venv
	$(BIN)/elegere serve --demo --port $${ELEGERE_PORT:-8765}

## make test: lint, then every test (PostgreSQL too when ELEGERE_TEST_DATABASE_URL is set)
test: venv lint
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check elegere_widgets tests

format: venv
	$(BIN)/ruff format elegere_widgets tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

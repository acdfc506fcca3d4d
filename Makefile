# motcua: two commands from a fresh clone.
#   make run   — install, migrate a SQLite database, seed demo data, serve http://127.0.0.1:5000
#   make test  — install, lint, type-check, run every test (integration tests need PostgreSQL and
#                RabbitMQ on 127.0.0.1; with CI=true their absence is a failure)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck unit integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/motcua db upgrade
	$(BIN)/motcua seed --demo
	$(BIN)/motcua serve

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

test: lint typecheck
	$(BIN)/pytest

bench: install
	$(BIN)/motcua bench engine --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

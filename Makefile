# motcua: two commands from a fresh clone.
#   make run   — install, migrate a SQLite database, seed demo data, serve http://127.0.0.1:5000
#   make test  — install, lint, type-check, run every test (integration tests need PostgreSQL and
#                RabbitMQ on 127.0.0.1; with CI=true their absence is a failure; browser tests use
#                Debian's chromium, which `make browser` installs with apt-get when it is missing)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: install run test lint typecheck unit integration e2e browser system bench clean
SYSTEM_PACKAGES := libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0 fonts-liberation2 fonts-freefont-ttf fonts-dejavu-core

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Front-end libraries (bpmn-js) come from npm, pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP) system

# What PDF documents need from Debian: Pango and HarfBuzz's font subsetter (WeasyPrint), the serif fonts with every Vietnamese
# letter (Liberation Serif for documents, FreeSerif for signature blocks). Installed with apt-get
# only when one is missing (and only as root; otherwise the command to run is printed).
system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "PDF documents need: sudo apt-get install $$missing"; fi; \
	fi

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; }

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

e2e: install browser
	$(BIN)/pytest tests/e2e

test: lint typecheck browser
	$(BIN)/pytest

bench: install
	$(BIN)/motcua bench engine --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache .mypy_cache .ruff_cache

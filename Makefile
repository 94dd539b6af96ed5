# One command to run (`make run`), one to test (`make test`). Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# The demo targets ask for DEBUG (settings default to off, and then need SECRET_KEY); DEBUG=false make run overrides.
DEMO_ENV := DEBUG=$${DEBUG:-true}
# Integration tests: real PostgreSQL + Redis (local defaults; override as needed).
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/workbench
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run serve check-deploy install install-dev migrate demo worker web test test-fast test-integration lint format bench clean

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v0

demo: migrate
	$(DEMO_ENV) $(PY) manage.py load_demo

worker: install
	$(DEMO_ENV) $(VENV)/bin/celery -A workbench worker -Q default,cpu,gpu --concurrency 1 --loglevel INFO

# The demo: runserver, a Celery worker for `default` and one for `cpu,gpu`, and beat, under one supervisor
# (workbench/supervise.py); Ctrl-C stops them all.
run: demo
	@echo ""
	@echo "  Workbench: http://127.0.0.1:$(PORT)/   (demo logins above; Django admin at /admin/ as 'admin')"
	@echo ""
	@$(DEMO_ENV) $(PY) manage.py serve --demo --port $(PORT)

# Production: gunicorn + Celery workers + beat on PostgreSQL and Redis (DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY,
# ALLOWED_HOSTS from the environment or .env); runs check --deploy, migrate and collectstatic first. See README.
serve: install
	@$(PY) manage.py serve

# `check --deploy` on the production defaults (no .env): every warning fails.
check-deploy: install
	ENV_FILE= DEBUG=false SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	  ALLOWED_HOSTS=workbench.example.com $(PY) manage.py check --deploy --fail-level WARNING

# The whole suite: deploy checks, app and engine tests on SQLite, then integration tests on PostgreSQL + Redis + a Celery worker.
test: install-dev check-deploy
	$(DEMO_ENV) $(PY) manage.py makemigrations --check --dry-run -v0
	$(PY) -m pytest -m "not integration" -q
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(PY) -m pytest -m integration -q

# Only the integration tests (PostgreSQL + Redis + a Celery worker).
test-integration: install-dev
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(PY) -m pytest -m integration -q

test-fast: install-dev
	$(PY) -m pytest -m "not integration and not browser and not slow" -q -x

# ruff, and the layering (import-linter contracts in pyproject.toml: apps import only downwards, engines are Django-free).
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install-dev
	@for b in import_scifact embed search baselines api metrics release_switch; do \
	  if [ -f bench/$$b.py ]; then echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; fi; done

clean:
	rm -rf var/ bench/.cache/

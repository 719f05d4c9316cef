# The two commands: `make run` (the API with demo data, its worker and a local webhook receiver,
# on an embedded PostgreSQL server unless DATABASE_URL is set) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
HOOK_PORT ?= 8001

.PHONY: install run test lint format docs drill scale-drill bench db-stop screenshots

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Local serving: DEBUG on unless the caller says otherwise.
run: export DEBUG ?= true
run: install
	$(PY) manage.py migrate --noinput --verbosity 0
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT) \
		--webhook-url http://127.0.0.1:$(HOOK_PORT)/hooks/cashback
	HOST=$(HOST) PORT=$(PORT) HOOK_PORT=$(HOOK_PORT) exec $(PY) -m config.serve

test: export SECRET_KEY ?= insecure-test-only-secret-key-0123456789
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The production settings the README documents, for Django's deployment checks.
DEPLOY_ENV := DEBUG=false ALLOWED_HOSTS=api.example.com \
	SECRET_KEY=deploy-check-6Zq8vX2mR9tL4wK7pN3sB5yH1cJ0dF6gA8eU2iO4 \
	DATABASE_URL=postgres://cashback@db.example.com:5432/cashback \
	REDIS_URL=redis://cache.example.com:6379/0 \
	EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend \
	CASHBACK_SMS_BACKEND=members.sms.FileSmsBackend

# ruff, mypy, the layers (import-linter), migrations in step with the models, deployment checks.
# mypy and makemigrations load the settings (DEBUG off) but send nothing: console backends may
# stand; the deployment checks run with DEPLOY_ENV's.
lint: export SECRET_KEY ?= insecure-lint-only-secret-key-0123456789
lint: export CASHBACK_ALLOW_CONSOLE_BACKENDS ?= true
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	env $(DEPLOY_ENV) $(PY) manage.py check --deploy --fail-level WARNING

# The documentation site (docs/, MkDocs Material) into site/, strict: a broken link or a page
# outside the navigation fails it. The API reference is rendered from the OpenAPI document,
# written first.
docs: export SECRET_KEY ?= insecure-docs-only-secret-key-0123456789
docs: export CASHBACK_ALLOW_CONSOLE_BACKENDS ?= true
docs: install
	$(PY) manage.py spectacular --format openapi-json --file docs/openapi.json
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Retries, cut-off requests, holding, expiry, reversals and webhook deliveries, with killed
# gunicorn and background workers, on PostgreSQL (see README).
# The back office's screenshots in docs/screenshots/, taken by the browser test from the real server.
screenshots: export SECRET_KEY ?= insecure-test-only-secret-key-0123456789
screenshots: install
	DOCS_SCREENSHOTS=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/cashback/test_back_office_browser.py -k as_staff_see_them

drill: install
	$(PY) bench/fault_drill.py $(DRILL_ARGS)

# PgBouncer (transaction pooling) and a streaming replica, built from nothing on this machine
# (pgbouncer and wrk installed with apt-get when missing) and removed afterwards: throughput
# against a single server, replica lag, the replica stopped and the primary restarted under load
# (see README).
scale-drill: install
	$(PY) bench/scale_drill.py $(SCALE_ARGS)

# Throughput and latency against bare Django + DRF, memory, on PostgreSQL (needs wrk; see README).
bench: install
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(PY) bench/run.py $(BENCH_ARGS)

# The embedded PostgreSQL server keeps running between commands; this stops it.
db-stop: install
	$(PY) -m config.embedded_postgres stop

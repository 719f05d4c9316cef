# The two commands: `make run` (the API with demo data, on an embedded PostgreSQL server unless
# DATABASE_URL is set) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format drill bench db-stop

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
	$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)
	HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py config.wsgi

test: export SECRET_KEY ?= insecure-test-only-secret-key-0123456789
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Retries, cut-off requests and a killed worker against gunicorn on PostgreSQL (see README).
drill: install
	$(PY) bench/fault_drill.py $(DRILL_ARGS)

# Throughput and latency against bare Django + DRF, memory, on PostgreSQL (needs wrk; see README).
bench: install
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(PY) bench/run.py $(BENCH_ARGS)

# The embedded PostgreSQL server keeps running between commands; this stops it.
db-stop: install
	$(PY) -m config.embedded_postgres stop

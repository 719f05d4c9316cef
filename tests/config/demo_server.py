"""A fresh demo server, started as `make run` starts one, for the tests that follow the
getting-started walkthrough and the integration guide: a new database on the test server,
`migrate`, `seed_demo` (whose printed credentials the tests use), then `python -m config.serve`
(gunicorn, the background worker and the local webhook receiver) on free ports, with DEBUG on."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.db import connection

from bench.harness import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]

# What the test settings put in the environment, which make run's processes do not have.
NOT_MAKE_RUN = (
    "DJANGO_SETTINGS_MODULE",
    "EMAIL_BACKEND",
    "EMAIL_FILE_PATH",
    "CASHBACK_SMS_BACKEND",
    "CASHBACK_SMS_FILE_PATH",
    "REDIS_URL",
    "DATABASE_REPLICA_URL",
    "WORKER_DATABASE_URL",
    "DATABASE_POOLER",
)


@dataclass
class DemoServer:
    base_url: str  # http://127.0.0.1:PORT
    hook_port: int  # the local webhook receiver's
    env: dict[str, str]  # its processes' environment: manage.py runs on its database with it
    credentials: dict  # what `seed_demo --json` printed
    log: Path  # the output of gunicorn, the worker and the receiver

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1/cashback"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _fresh_database(name: str) -> dict[str, str]:
    """Creates the database `name` (dropped first if a run left it) on the server the tests use;
    returns the variables that lead manage.py to it."""
    params = connection.get_connection_params()
    host, port, user = (
        str(params.get("host") or "127.0.0.1"),
        int(params.get("port") or 5432),
        params["user"],
    )
    admin = {k: params[k] for k in ("user", "password") if params.get(k)}
    with psycopg.connect(host=host, port=port, dbname="postgres", autocommit=True, **admin) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    password = f":{params['password']}" if params.get("password") else ""
    # On a Unix socket (the embedded server) PGHOST names its folder; on TCP it is the host.
    return {
        "DATABASE_URL": f"postgres://{user}{password}@/{name}",
        "PGHOST": host,
        "PGPORT": str(port),
    }


def _drop_database(env: dict[str, str]) -> None:
    name = env["DATABASE_URL"].rsplit("/", 1)[1]
    params = connection.get_connection_params()
    admin = {k: params[k] for k in ("user", "password") if params.get(k)}
    with psycopg.connect(
        host=env["PGHOST"], port=int(env["PGPORT"]), dbname="postgres", autocommit=True, **admin
    ) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> str:
    """`python manage.py ARGS` on the demo database; its output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


@contextmanager
def demo_server(name: str, log: Path) -> Iterator[DemoServer]:
    """A demo server on the fresh database `<test database>_<name>`, dropped afterwards."""
    database = f"{connection.get_connection_params()['dbname']}_{name}"
    env = {k: v for k, v in os.environ.items() if k not in NOT_MAKE_RUN}
    env.update(_fresh_database(database))
    port, hook_port = free_port(), free_port()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "true",  # make run's
            "SECRET_KEY": "demo-server-secret-key-not-for-production-0123456789",
            "LOG_FORMAT": "plain",
            "WEB_CONCURRENCY": "2",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "HOOK_PORT": str(hook_port),
        }
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        credentials = json.loads(
            manage(
                env,
                "seed_demo",
                "--json",
                "--base-url",
                base_url,
                "--webhook-url",
                f"http://127.0.0.1:{hook_port}/hooks/cashback",
            )
        )
        with open(log, "w") as out:
            serve = subprocess.Popen(
                [sys.executable, "-m", "config.serve"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_up(base_url + "/healthz", timeout=60)
            yield DemoServer(base_url, hook_port, env, credentials, log)
        finally:
            serve.send_signal(signal.SIGTERM)  # config.serve stops its three processes
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
    finally:
        _drop_database(env)

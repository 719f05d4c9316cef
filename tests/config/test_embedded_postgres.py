"""With no DATABASE_URL, the project's commands start an embedded PostgreSQL server themselves,
from the pip-installed wheel, with its data in the folder they are given."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from config import embedded_postgres

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"EMBEDDED_POSTGRES_DIR": str(data_dir), "DEBUG": "true"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )


@pytest.fixture
def data_dir(tmp_path):
    directory = tmp_path / "postgres"
    yield directory
    embedded_postgres.stop(directory)


def test_migrate_starts_the_embedded_server_and_creates_the_database(data_dir):
    manage("manage.py", "migrate", "--verbosity", "0", data_dir=data_dir)

    assert (data_dir / "PG_VERSION").read_text().strip() == "18"
    address = embedded_postgres.start(data_dir)  # already running: only looked up
    with psycopg.connect(
        host=address.socket_dir, port=address.port, user="postgres", dbname="cashback"
    ) as conn:
        applied = conn.execute(
            "SELECT count(*) FROM django_migrations WHERE app = 'cashback'"
        ).fetchone()
        assert applied is not None
        assert applied[0] >= 5
        assert conn.execute("SELECT to_regclass('cashback_cache')").fetchone() == (
            "cashback_cache",
        )


def test_the_server_keeps_running_between_commands_until_stopped(data_dir):
    url = manage("-m", "config.embedded_postgres", "url", data_dir=data_dir).stdout.strip()
    assert url == f"postgres://postgres@/cashback?host={data_dir}&port=5432"
    assert embedded_postgres.start(data_dir).socket_dir == str(data_dir)

    stopped = manage("-m", "config.embedded_postgres", "stop", data_dir=data_dir)

    assert stopped.stdout.strip() == "stopped"
    assert not embedded_postgres.stop(data_dir)

"""The benchmark reads what each request cost in CPU from /proc: the server's workers' and
PostgreSQL's, whose processes it finds from a connection's backend."""

import os
import time

import pytest
from django.db import connection
from psycopg.conninfo import make_conninfo

from bench.harness import cpu_seconds, postgres_pids


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_seconds_count_a_process_s_work():
    before = cpu_seconds([os.getpid()])
    _busy(0.3)
    spent = cpu_seconds([os.getpid()]) - before
    assert 0.25 <= spent <= 0.6
    assert cpu_seconds([2**22 + 7]) == 0  # no such process: nothing


@pytest.mark.django_db
def test_postgres_processes_include_this_connection_s_backend_and_count_its_work():
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    url = _conninfo()
    pids = postgres_pids(url)
    assert backend in pids
    before = cpu_seconds(pids)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM generate_series(1, 3000000)")
    assert cpu_seconds(postgres_pids(url)) - before >= 0.1


def _conninfo() -> str:
    """The test database's connection string, whichever server it is on."""
    settings = connection.settings_dict
    return make_conninfo(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
    )

"""The benchmark reads what each request cost in CPU from /proc: the server's workers',
PostgreSQL's (the processes that work for the benchmark's database) and Redis's."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from bench.harness import cpu_seconds, postgres_pids, redis_pid


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_seconds_count_each_running_process_s_work_and_leave_out_exited_ones():
    before = cpu_seconds([os.getpid()])[os.getpid()]
    _busy(0.3)
    assert 0.25 <= cpu_seconds([os.getpid()])[os.getpid()] - before <= 0.6
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    assert cpu_seconds([exited.pid, os.getpid()]).keys() == {os.getpid()}


@pytest.mark.django_db
def test_postgres_processes_are_the_database_s_and_the_server_s_own():
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    pids = postgres_pids(_conninfo())
    assert backend in pids
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND datname <> current_database() AND pid = ANY(%s)",
            [pids],
        )
        assert cursor.fetchone()[0] == 0
        before = sum(cpu_seconds(pids).values())
        cursor.execute("SELECT count(*) FROM generate_series(1, 3000000)")
    assert sum(cpu_seconds(pids).values()) - before >= 0.1


def test_the_redis_server_is_found_by_its_url():
    pid = redis_pid("redis://127.0.0.1:6379/14")
    assert pid is not None
    assert "redis" in Path(f"/proc/{pid}/comm").read_text()


def _conninfo() -> str:
    """The test database's connection string, whichever server it is on."""
    connection.ensure_connection()
    return connection.connection.info.dsn

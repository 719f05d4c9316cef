"""What the benchmark and the fault drill share: a fresh PostgreSQL database, the project's
migrations, gunicorn servers on loopback, and a look at their workers."""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def production_env(database_url: str, name: str, **settings: str) -> dict:
    """The environment of a production-configured server on this machine (DEBUG off), on
    `database_url`; one-time codes it sends are kept in files named after `name`, since
    production refuses console backends. `settings` adds or overrides variables."""
    spool = Path(tempfile.gettempdir())
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": f"{name}-secret-key-not-for-production-0123456789",
        "DEBUG": "false",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(spool / f"cashback-{name}-mail"),
        "CASHBACK_SMS_BACKEND": "members.sms.FileSmsBackend",
        "CASHBACK_SMS_FILE_PATH": str(spool / f"cashback-{name}-sms"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # The drills' webhook receivers listen on this machine's loopback, for test-mode apps;
        # with DEBUG off that needs saying.
        "CASHBACK_WEBHOOK_ALLOW_LOOPBACK": "true",
        **settings,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(
        ["psql", admin, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True
    )
    subprocess.run(["psql", admin, "-q", "-c", f'CREATE DATABASE "{name}"'], check=True)


def manage(env: dict, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=not capture,
        capture_output=capture,
        text=True,
    )


def deploy(env: dict) -> None:
    """What a deployment runs before it serves: the migrations, and `collectstatic` for the
    files WhiteNoise serves with DEBUG off (without them it warns that the folder is missing)."""
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")


def setup_django(env: dict, settings_module: str = "config.settings") -> None:
    """Django in this process, on the same database, to prepare data and check results."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def gunicorn(wsgi: str, env: dict, *, workers: int, health: str, log: Path, args=()):
    """A gunicorn server on a free loopback port, with gunicorn's further `args`; yields
    (base_url, master process)."""
    port = free_port()
    with open(log, "a") as out:
        server = subprocess.Popen(
            [
                GUNICORN,
                wsgi,
                f"--bind=127.0.0.1:{port}",
                f"--workers={workers}",
                "--worker-class=sync",
                "--preload",
                "--graceful-timeout=2",
                "--log-level=warning",
                *args,
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + health)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return sorted(int(pid) for pid in out.split())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """The user and system CPU, in seconds, each of the processes has used so far
    (/proc/PID/stat), of those still running."""
    tick = os.sysconf("SC_CLK_TCK")
    spent = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        spent[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return spent


# The processes of the server that work for a database: its own (backends, parallel and
# autovacuum workers), and the server's shared ones, which work for no database in particular
# (WAL writer, checkpointer, ...); not those of other databases.
_DATABASE_PIDS = """
SELECT pid FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND (datname = current_database() OR datname IS NULL)
"""


def postgres_pids(url: str) -> list[int]:
    """The processes of the PostgreSQL server behind `url` on this machine that work for its
    database (`_DATABASE_PIDS`), and the postmaster, which forks its backends."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        postmaster = _parent(connection.info.backend_pid)
        pids = [row[0] for row in connection.execute(_DATABASE_PIDS)]
    return [postmaster, *pids]


def redis_pid(url: str) -> int | None:
    """The Redis server's process behind `url`, when it runs on this machine."""
    import redis

    pid = int(redis.Redis.from_url(url).info("server")["process_id"])
    return pid if Path(f"/proc/{pid}").exists() else None


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

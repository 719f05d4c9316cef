"""Reads from a streaming replica, when one is configured and safe to read.

Only the reads that ask for it go to the replica (balance and history: `replica_read`), and only
when the replica is healthy and the member has not written lately. Everything else, writes
included, goes to the primary (`default`).

- **Read your own writes.** After a member's write commits (`member_wrote`), that member's reads
  go to the primary for `REPLICA_READ_YOUR_WRITES_SECONDS`, marked in the cache every server
  process shares. So a till never reads a balance older than its own last write, as long as the
  replica lags less than that window, which the health check makes sure of.
- **Health.** Each process asks the replica how far behind it is at most once every
  `REPLICA_CHECK_SECONDS`: none when it has replayed everything the primary wrote, else the time
  since it last replayed a transaction. Past `REPLICA_MAX_LAG_SECONDS`, or unreachable, the
  replica is skipped until the next check, and a read that fails on it is read again on the
  primary: a replica going away costs no request an error.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections, transaction

logger = logging.getLogger(__name__)

PRIMARY, REPLICA = "default", "replica"
T = TypeVar("T")


@dataclass
class _Health:
    checked_at: float = float("-inf")
    usable: bool = False
    lag_seconds: float | None = None


_health = _Health()
_health_lock = threading.Lock()


def replica_configured() -> bool:
    return settings.REPLICA_READS and REPLICA in settings.DATABASES


def _written_key(member_key: str) -> str:
    return f"replica:wrote:{member_key}"


def member_wrote(member_key: str) -> None:
    """Sends `member_key`'s reads to the primary for the read-your-writes window, from the
    commit of the current transaction on (at once outside one)."""
    if not replica_configured():
        return
    # A second more: the database cache keeps an expiry to the whole second, rounded down,
    # which would cut the window short by up to a second.
    window = settings.REPLICA_READ_YOUR_WRITES_SECONDS + 1
    transaction.on_commit(lambda: cache.set(_written_key(member_key), 1, timeout=window))


def replica_lag_seconds() -> float | None:
    """How far the replica is behind the primary, in seconds (0: it has replayed everything);
    None when it cannot be reached or is not replaying."""
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (primary_lsn,) = cursor.fetchone()
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn, "
            "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())",
            [primary_lsn],
        )
        recovering, caught_up, since_replay = cursor.fetchone()
    if not recovering:
        return None
    if caught_up:
        return 0.0
    return None if since_replay is None else float(since_replay)


def _replica_usable() -> bool:
    now = time.monotonic()
    with _health_lock:
        if now - _health.checked_at < settings.REPLICA_CHECK_SECONDS:
            return _health.usable
        _health.checked_at = now
    try:
        lag = replica_lag_seconds()
    except DatabaseError as exc:
        logger.warning("The replica cannot be read: %s", exc)
        connections[REPLICA].close()
        lag = None
    usable = lag is not None and lag <= settings.REPLICA_MAX_LAG_SECONDS
    with _health_lock:
        _health.usable, _health.lag_seconds = usable, lag
    return usable


def _replica_down() -> None:
    with _health_lock:
        _health.usable, _health.checked_at = False, time.monotonic()
    connections[REPLICA].close()


def read_database(member_key: str | None) -> str:
    """Where a read that a replica may serve goes: the replica when it is configured and
    usable and the member (if any) has not written within the window; else the primary."""
    if not replica_configured() or transaction.get_connection(PRIMARY).in_atomic_block:
        return PRIMARY
    if member_key is not None and cache.get(_written_key(member_key)) is not None:
        return PRIMARY
    return REPLICA if _replica_usable() else PRIMARY


def replica_read(
    query: Callable[[str], T], *, member_key: str | None = None, using: str | None = None
) -> T:
    """Runs `query(database_alias)` on `using`, else on the database `read_database` picks for
    the member; a query the replica fails (it went away) runs again on the primary."""
    using = using or read_database(member_key)
    if using == PRIMARY:
        return query(PRIMARY)
    try:
        return query(REPLICA)
    except DatabaseError as exc:
        logger.warning("A read failed on the replica and is read on the primary: %s", exc)
        _replica_down()
        return query(PRIMARY)


class PrimaryReplicaRouter:
    """Every model reads and writes on the primary; `replica_read` alone sends a read to the
    replica, by naming it. Migrations run on the primary only (the replica follows it)."""

    def db_for_read(self, model, **hints):
        return PRIMARY

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY

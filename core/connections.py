"""What each new PostgreSQL connection is given before its first query.

Django reads `timestamptz` values with its own loader, a Python subclass of psycopg's pure-Python
one, so that they come back in the connection's time zone: each value is parsed in Python, and a
history page reads twenty. Where psycopg's C loader is installed (psycopg[binary]) and the
connection's time zone is UTC (as the settings make it), that loader gives the same values: it
reads them in the session's time zone, which Django sets to UTC on connecting, as
`datetime.timezone.utc`-aware datetimes. The connection is given it, in a class that also tells
Django the time zone its values are in (Django compares it before each cursor).
"""

from datetime import UTC
from typing import Any

import psycopg
from psycopg.pq import Format

TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid
_C_LOADER: Any = psycopg.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)


class UtcTimestamptzLoader:
    """psycopg's C `timestamptz` loader, for a session in UTC."""

    timezone = UTC  # as Django's loader names it
    format = Format.TEXT

    def __init__(self, oid: int, context: Any = None) -> None:
        self.load = _C_LOADER(oid, context).load


def timestamptz_loader_install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created`: a new connection reads `timestamptz` with the C loader when its
    values are to be UTC and the C loader is there; otherwise Django's stays."""
    if (
        connection.vendor != "postgresql"
        or connection.timezone is not UTC
        or psycopg.pq.__impl__ == "python"
    ):
        return
    connection.connection.adapters.register_loader(TIMESTAMPTZ, UtcTimestamptzLoader)

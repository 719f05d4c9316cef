"""A new connection reads `timestamptz` with psycopg's C loader, and reads the same values
Django's own loader reads: aware, in UTC, to the microsecond."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from hypothesis import given, settings
from hypothesis import strategies as st

from core.connections import TIMESTAMPTZ, UtcTimestamptzLoader
from core.rows import prepared_cursor

pytestmark = pytest.mark.django_db

# Years PostgreSQL and Python both hold, in any time zone the value was written in.
moments = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 (hypothesis bounds are naive)
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-9))]),
)


def read_back(values: list[datetime], *, prepared: bool = False) -> list[datetime]:
    cursor = prepared_cursor("default") if prepared else connection.cursor()
    with cursor:
        cursor.execute("SELECT unnest(%s::timestamptz[])", [values])
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_reads_timestamptz_with_the_c_loader():
    connection.close()
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ, 0)
    assert loader is UtcTimestamptzLoader
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        assert type(cursor.cursor._tx.get_loader(TIMESTAMPTZ, 0)).__module__ != (
            "psycopg.types.datetime"
        )


@settings(max_examples=200, deadline=None)
@given(values=st.lists(moments, min_size=1, max_size=20))
def test_the_values_are_those_djangos_loader_reads(values):
    fast = read_back(values)
    assert fast == read_back(values, prepared=True)
    with connection.cursor() as cursor:
        register_tzloader(connection.timezone, cursor.cursor)  # Django's loader, on this cursor
        cursor.execute("SELECT unnest(%s::timestamptz[])", [values])
        django_read = [row[0] for row in cursor.fetchall()]
    assert fast == django_read == values
    assert all(value.tzinfo is UTC for value in fast + django_read)

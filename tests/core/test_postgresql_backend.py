"""A persistent connection is checked before a request uses it without asking the server while
its socket is quiet; one the server dropped is found out and replaced before a query fails on it;
one with something unexpected to read is asked, as Django asks (`SELECT 1`)."""

import select

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def other_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def last_statement(pid: int) -> str:
    with other_connection() as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None
    return row[0]


def wait_for_input(timeout: float = 5) -> None:
    readable, _, _ = select.select([connection.connection.fileno()], [], [], timeout)
    assert readable, "the server sent nothing"


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid() /* marker */")
        return cursor.fetchone()[0]


def test_a_quiet_connection_is_usable_without_a_round_trip():
    pid = backend_pid()
    assert connection.is_usable()
    assert last_statement(pid) == "SELECT pg_backend_pid() /* marker */"


def test_a_connection_the_server_dropped_is_replaced_before_a_query_uses_it():
    pid = backend_pid()
    with other_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_for_input()
    assert not connection.is_usable()

    connection.close_if_unusable_or_obsolete()  # as each request starts
    assert backend_pid() != pid


def test_a_connection_with_something_to_read_is_asked():
    pid = backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("LISTEN backend_check")
    with other_connection() as other:
        other.execute("NOTIFY backend_check")
    wait_for_input()
    assert connection.is_usable()
    assert last_statement(pid) == "SELECT 1"
    with connection.cursor() as cursor:
        cursor.execute("UNLISTEN *")


def test_a_closed_connection_is_not_usable():
    backend_pid()
    connection.connection.close()
    assert not connection.is_usable()
    connection.close()
    assert not connection.is_usable()


def _plan_cache_mode() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_session_with_prepared_statements_keeps_their_generic_plans(reconnects):
    # Set once the session is open, not as a startup parameter (`options`), which PgBouncer
    # refuses: the connection's parameters carry no setting.
    reconnects.DATABASE_PREPARED_STATEMENTS = True
    connection.close()
    assert "plan_cache_mode" not in str(connection.get_connection_params())
    assert _plan_cache_mode() == "force_generic_plan"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("prepared", "pooler"), [(False, ""), (True, "transaction"), (False, "transaction")]
)
def test_a_session_without_its_own_prepared_statements_plans_as_the_server_says(
    reconnects, prepared, pooler
):
    # Behind a transaction pooler a session's setting would not follow its transactions: the
    # role carries it there (docs/operations.md).
    reconnects.DATABASE_PREPARED_STATEMENTS, reconnects.DATABASE_POOLER = prepared, pooler
    connection.close()
    assert _plan_cache_mode() == "auto"

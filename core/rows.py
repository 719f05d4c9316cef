"""Model instances from the rows of a statement written out by hand, as the ORM makes them.

A few manager methods write their one statement out instead of composing it with the ORM, each
saying why in its docstring (an `UPDATE ... RETURNING` the ORM cannot say; reads on the hot path,
whose composition costs a worker more CPU than the rest of the request, as the README's
benchmark shows). They select `select_list(Model, alias)` and turn each row into an instance
with `from_row`, which applies the same conversions the ORM applies.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections
from django.db.backends.postgresql import base as postgresql
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from psycopg import sql

M = TypeVar("M", bound=Model)


def quote(name: str | None) -> str:
    """A table or column name, quoted as PostgreSQL (the only database) quotes identifiers."""
    return sql.Identifier(str(name)).as_string()


def select_list(model: type[Model], alias: str) -> str:
    """The model's columns in field order, qualified by `alias`: what `from_row` reads."""
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


@cache
def _readers(model: type[Model], using: str) -> tuple[list[str], list[tuple[Any, list]]]:
    """The model's attribute names, and per column its expression and converters (the
    backend's, then the field's), in field order."""
    connection = connections[using]
    fields = model._meta.concrete_fields
    readers = []
    for field in fields:
        col = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        readers.append((col, converters))
    return [field.attname for field in fields], readers


def from_row(model: type[M], row: Sequence, using: str) -> M:
    """The instance whose columns (in `select_list` order) `row` holds, read on `using`."""
    connection = connections[using]
    names, readers = _readers(model, using)
    values = []
    for value, (col, converters) in zip(row, readers, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        values.append(value)
    return model.from_db(using, names, values)


def fields_save(instance: Any, *names: str) -> None:
    """Saves these fields of a saved tenant row, as `save(update_fields=names)` writes them, by
    its app and its key: the UPDATE names the row's app, as every statement on a tenant table
    does (a statement a database distributed by app runs on one node)."""
    model = type(instance)
    model._default_manager.filter(app_id=instance.app_id, pk=instance.pk).update(
        **{name: getattr(instance, name) for name in names}
    )


# Django defines it for psycopg 3 only, which its stubs do not say.
_ServerBindingCursor: Any = postgresql.ServerBindingCursor


class _PreparingCursor(_ServerBindingCursor):
    """psycopg's server-side binding cursor (with Django's additions), whose every statement is
    prepared: PostgreSQL parses and plans it once per connection, then only executes it."""

    def execute(self, query: Any, params: Any = None, *, prepare: Any = None, binary: Any = None):
        return super().execute(query, params, prepare=True, binary=binary)

    def _convert_query(self, query: Any, params: Any = None) -> Any:
        # psycopg keeps the statement it ran (which Django's query log reads) only when it does
        # not prepare it; this cursor always does.
        self._query = super()._convert_query(query, params)
        return self._query


def prepared_cursor(using: str) -> CursorWrapper:
    """A cursor on `using`'s connection, as `connection.cursor()` makes it (the connection
    checked, errors wrapped, queries logged when they are), whose statements are prepared.

    For the statements written out on the hot path, executed on every request with the same
    text: planning them cost PostgreSQL more than executing them (the INSERT of an entry with
    its lot and event, 0.3 ms against 0.25), and the parameters are bound by the server, so each
    statement casts whatever PostgreSQL could not infer. psycopg keeps a connection's prepared
    statements (at most 100) and drops them with it. With `DATABASE_PREPARED_STATEMENTS` off (a
    transaction pooler in front), a plain cursor: nothing outlives the transaction.
    """
    if not settings.DATABASE_PREPARED_STATEMENTS:
        return connections[using].cursor()
    connection: Any = connections[using]  # Django's PostgreSQL wrapper, private names included
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_PreparingCursor(connection.connection))

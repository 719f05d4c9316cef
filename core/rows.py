"""Model instances from the rows of a statement written out by hand, as the ORM makes them.

A few manager methods run a statement written out as SQL (each app keeps its own in
`<app>/queries.py`) instead of composing it with the ORM, each saying why in its docstring (an
`UPDATE ... RETURNING` the ORM cannot say; reads on the hot path, whose composition costs a
worker more CPU than the rest of the request). A statement that reads a model's rows selects its
columns in the model's field order, and `from_row` turns each row into an instance, with the
same conversions the ORM applies; one that inserts a new instance names its fields as
`prepared_values` gives them.
"""

import re
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections
from django.db.backends.postgresql import base as postgresql
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init

M = TypeVar("M", bound=Model)


@cache
def _readers(model: type[Model], using: str) -> tuple[list[str], list[tuple[int, Any, list]]]:
    """The model's attribute names in field order, and for each column that has converters
    (the backend's, then the field's) its position, its expression and its converters."""
    connection = connections[using]
    fields = model._meta.concrete_fields
    readers = []
    for position, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if converters:
            readers.append((position, col, converters))
    return [field.attname for field in fields], readers


def prepared_values(
    instance: Model, using: str, *, prefix: str = "", kept: tuple[str, ...] = ()
) -> dict[str, Any]:
    """What `save()` would insert for the new `instance`, by attribute name (after `prefix`), for
    a statement written out that names them so (`%(app_id)s`): each field's default,
    `auto_now_add`, each value as its field prepares it for the database; but the fields `kept`
    as the instance holds them (a time the caller chose). The key is left out."""
    connection = connections[using]
    return {
        prefix + field.attname: field.get_db_prep_save(
            getattr(instance, field.attname) if field.name in kept
            else field.pre_save(instance, True),
            connection,
        )
        for field in type(instance)._meta.concrete_fields
        if not field.primary_key
    }  # fmt: skip


def inserted(sql: str, params: dict[str, Any], using: str) -> tuple | None:
    """Runs `sql`, an `INSERT ... ON CONFLICT DO NOTHING RETURNING`, prepared
    (`prepared_cursor`: planning it costs PostgreSQL more than running it), and returns its row;
    None when a unique constraint said the row is there already, and nothing was written. A row
    created by a concurrent request is found afterwards, without a savepoint around an insert
    that fails (two round trips more); `bulk_create`'s `ignore_conflicts` returns no key."""
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def mark_saved(instance: Model, key: Any, using: str) -> None:
    """Marks the new `instance` saved on `using` with the key the database gave it, as `save()`
    leaves it."""
    instance.pk = key
    instance._state.adding = False
    instance._state.db = using


def from_row(model: type[M], row: Sequence, using: str) -> M:
    """The instance whose columns (in the model's field order) `row` holds, read on `using`."""
    return from_rows(model, [row], using)[0]


def from_rows(model: type[M], rows: Iterable[Sequence], using: str) -> list[M]:
    """The instances whose columns (in the model's field order) `rows` hold, read on `using`.

    What `Model.from_db` makes, without `Model.__init__`'s walk through the fields' descriptors
    (the attributes go straight into the instance's `__dict__`, where the descriptors read
    them): a history page makes twenty instances, and `__init__` took most of their time. A
    model with `post_init` receivers, which `__init__` calls, goes through `from_db`.
    """
    connection = connections[using]
    names, readers = _readers(model, using)
    through_init = post_init.has_listeners(model)
    instances = []
    for row in rows:
        if len(row) != len(names):
            raise ValueError(f"{len(row)} columns for the {len(names)} of {model.__name__}.")
        values = list(row)
        for position, col, converters in readers:
            for converter in converters:
                values[position] = converter(values[position], col, connection)
        if through_init:
            instances.append(model.from_db(using, names, values))
            continue
        instance = model.__new__(model)
        instance.__dict__.update(zip(names, values, strict=True))
        state = instance._state = ModelState()
        state.adding, state.db = False, using
        instances.append(instance)
    return instances


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


# What an element of `array_text` may be written as: text that an array's literal takes
# unquoted, and that is not the word NULL.
_PLAIN_ELEMENT = re.compile(r"(?!(?i:null)$)[0-9A-Za-z_.+:-]+")


def array_text(values: Iterable[int | Decimal | date | str]) -> str:
    """A list as PostgreSQL writes an array (`{1,2,3}`), for a parameter that the statement
    casts (`%(ids)s::bigint[]`): psycopg's dumper of a Python list looks at every element for
    its type, which cost a programme earn more CPU than its statements' other parameters
    together. Numbers, dates and plain words only (letters, digits, `_.+:-`); anything an
    array's text would have to quote raises ValueError."""
    items = []
    for value in values:
        item = value.isoformat() if isinstance(value, date) else str(value)
        if isinstance(value, bool) or not _PLAIN_ELEMENT.fullmatch(item):
            raise ValueError(f"{value!r} is no plain element of an array's text.")
        items.append(item)
    return "{" + ",".join(items) + "}"

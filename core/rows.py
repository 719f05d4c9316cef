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

from django.db import connections
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

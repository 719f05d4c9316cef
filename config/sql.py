"""Statements for the hot path, built once per model instead of composed on every request.

The ORM spends about 0.3 ms composing each query, more than a loopback round trip to PostgreSQL;
an earn runs four. These helpers write the same SQL from the model's own fields once, bind
values with the fields' own conversions (`get_db_prep_save`) and read rows back through the
backend's and fields' converters, so the model stays the one description of its table and the
statements run unchanged on PostgreSQL and SQLite (both have `RETURNING`).

Table and column names come from the models and `where`/`assignments` are constants of the
calling code; values always travel as parameters (hence the S608 exemptions below).
"""

from functools import cache

from django.core import checks
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model


@checks.register(checks.Tags.database, deploy=False)
def check_returning(app_configs=None, databases=None, **kwargs):
    """These statements need RETURNING: PostgreSQL, or SQLite 3.35 and later."""
    features = connections[DEFAULT_DB_ALIAS].features
    if features.can_return_columns_from_insert:
        return []
    return [
        checks.Error(
            "The database does not support RETURNING (SQLite older than 3.35?).",
            hint="Use PostgreSQL, or a Python built against SQLite 3.35 or later.",
            id="cashback.E001",
        )
    ]


def _connection():
    """The thread's connection itself: each attribute read through `django.db.connection`
    looks the thread's connection up again, dozens of times per row."""
    return connections[DEFAULT_DB_ALIAS]


@cache
def _columns(model: type[Model]) -> tuple[list[str], list[str], list]:
    """The model's columns, their attribute names, and for each column its
    expression and converters (the backend's, then the field's, as the ORM applies them)."""
    fields = model._meta.concrete_fields
    readers = []
    for field in fields:
        col = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        readers.append((col, converters))
    columns = [connection.ops.quote_name(f.column) for f in fields]
    return columns, [f.attname for f in fields], readers


def _rows(conn, sql: str, params: list) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _instance(model: type[Model], row, conn) -> Model:
    _, names, readers = _columns(model)
    values = []
    for value, (col, converters) in zip(row, readers, strict=True):
        for converter in converters:
            value = converter(value, col, conn)
        values.append(value)
    return model.from_db(conn.alias, names, values)


def select(
    model: type[Model],
    where: str,
    params: list,
    *,
    joins: str = "",
    extra: dict[str, str] | None = None,
    tail: str = "",
) -> list[Model]:
    """The rows of `model` matching `where` (SQL with %s placeholders, columns named by their
    table). `extra` adds computed columns, set as attributes as the database returns them;
    `joins` and `tail` (ORDER BY, LIMIT) go where SQL puts them. `params` follow the SQL's
    order: extra columns, joins, where, tail."""
    columns, _, _ = _columns(model)
    table = model._meta.db_table
    extra = extra or {}
    select_list = ", ".join(
        [
            *(f"{table}.{column}" for column in columns),
            *(f"{sql} AS {name}" for name, sql in extra.items()),
        ]
    )
    conn = _connection()
    rows = _rows(conn, f"SELECT {select_list} FROM {table} {joins} WHERE {where} {tail}", params)  # noqa: S608
    width = len(columns)
    instances = []
    for row in rows:
        instance = _instance(model, row[:width], conn)
        for name, value in zip(extra, row[width:], strict=True):
            setattr(instance, name, value)
        instances.append(instance)
    return instances


def select_one(model: type[Model], where: str, params: list, **parts) -> Model | None:
    """The one row of `model` matching `where`, or None; `parts` as for `select`."""
    rows = select(model, where, params, **parts)
    return rows[0] if rows else None


def update_returning(model: type[Model], assignments: str, where: str, params: list):
    """Runs `UPDATE ... SET assignments WHERE where` on at most one row and returns that row as
    it is after the update, or None when no row matched. The row stays locked until the
    transaction ends."""
    columns = ", ".join(_columns(model)[0])
    conn = _connection()
    sql = f"UPDATE {model._meta.db_table} SET {assignments} WHERE {where} RETURNING {columns}"  # noqa: S608
    rows = _rows(conn, sql, params)
    return _instance(model, rows[0], conn) if rows else None


@cache
def _insert_sql(model: type[Model]) -> tuple[str, list]:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    pk = connection.ops.quote_name(meta.pk.column)
    return f"INSERT INTO {meta.db_table} ({names}) VALUES ({marks}) RETURNING {pk}", fields  # noqa: S608


def insert(obj: Model) -> Model:
    """Saves a new instance in one statement, as `Model.objects.create` would (defaults,
    `auto_now_add`, the same value conversions), without composing the INSERT each time."""
    sql, fields = _insert_sql(type(obj))
    conn = _connection()
    params = [f.get_db_prep_save(f.pre_save(obj, True), conn) for f in fields]
    obj.pk = _rows(conn, sql, params)[0][0]
    obj._state.adding = False
    obj._state.db = conn.alias
    return obj

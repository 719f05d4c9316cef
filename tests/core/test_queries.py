"""The statements written out as SQL (`<app>/queries.py`) name real tables and columns, read and
write the columns the models have, in the order the code reads them, and keep the plan
PostgreSQL made for them once."""

import re
from importlib import import_module

import pytest
from django.db import connection
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH, MAX_CACHED_STATEMENT_PARAMS

from apps_auth.models import IdempotencyRecord
from apps_auth.queries import IDEMPOTENCY_CLAIM
from cards.models import Card
from cashback import queries as cashback_queries
from cashback.models import _NO_BUDGETS, _NO_MOVE, _NO_USES, LedgerEntry, Wallet
from members.models import Member
from tests.helpers import earn
from webhooks.models import EventDraft, WebhookEvent
from webhooks.queries import EVENT_INSERT

REDEEM = "/api/v1/cashback/cashback/redeem"

APPS = ("apps_auth", "cards", "members", "webhooks", "programme", "cashback")
PARAMETER = re.compile(r"%\((\w+)\)s")


def statements() -> list[tuple[str, str]]:
    found = []
    for app in APPS:
        module = import_module(f"{app}.queries")
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str):
                found.append((f"{app}.{name}", value))
    return found


def parameters(sql: str) -> set[str]:
    return set(PARAMETER.findall(sql))


def nothing_for(sql: str) -> dict:
    return dict.fromkeys(parameters(sql))


def test_every_app_keeps_its_statements_in_its_queries_module():
    names = [name for name, _ in statements()]
    assert len(names) >= 15
    assert {"cashback.ENTRY_APPEND", "cards.CARD_OF_APP", "members.MEMBER_OF_APP"} <= set(names)


@pytest.mark.parametrize(("name", "sql"), statements(), ids=[n for n, _ in statements()])
def test_each_statement_is_planned_on_the_real_schema(db, name, sql):
    with connection.cursor() as cursor:
        if sql.lstrip().startswith("COPY"):  # names checked by a copy of no row
            with cursor.copy(sql):
                pass
            return
        cursor.execute("EXPLAIN " + sql, nothing_for(sql) or None)
        assert cursor.fetchall()


def columns(model) -> list[str]:
    return [field.column for field in model._meta.concrete_fields]


@pytest.mark.parametrize(
    ("sql", "model"),
    [
        ("cards.CARD_OF_APP", Card),
        ("members.MEMBER_OF_APP", Member),
        ("cashback.WALLET_MOVE", Wallet),
        ("cashback.HISTORY_RANGE", LedgerEntry),
        ("cashback.HISTORY_RANGE_OF_TYPE", LedgerEntry),
        ("cashback.MEMBER_CARD", Card),
    ],
)
def test_a_statement_read_into_instances_selects_the_model_s_columns_in_field_order(db, sql, model):
    # `core.rows.from_row` reads a row's columns by position: a field added to the model must
    # be added to the statement, in its place.
    statement = dict(statements())[sql]
    with connection.cursor() as cursor:
        cursor.execute(statement, nothing_for(statement))
        selected = [column.name for column in cursor.description]
    assert selected[: len(columns(model))] == columns(model)


def inserted_columns(sql: str, table: str) -> list[str]:
    match = re.search(rf"INSERT INTO {table} \(([^)]*)\)", sql)
    assert match, table
    return [name.strip() for name in match.group(1).split(",")]


def attributes(model, *, prefix: str = "", key: bool = False) -> set[str]:
    return {
        prefix + field.attname
        for field in model._meta.concrete_fields
        if key or not field.primary_key
    }


def test_the_inserts_of_new_instances_write_every_field_as_prepared_values_names_it():
    # `core.rows.prepared_values` gives a new instance's fields by attribute name: each
    # statement writes every column of its model, each from its own parameter.
    wallet, member = cashback_queries.WALLET_INSERT, cashback_queries.MEMBER_WALLET_INSERT
    assert set(inserted_columns(wallet, "cashback_wallet")) == set(columns(Wallet)) - {"id"}
    assert parameters(wallet) == attributes(Wallet)
    assert set(inserted_columns(member, "members_member")) == set(columns(Member)) - {"id"}
    assert parameters(member) == attributes(Member, prefix="member_") | attributes(Wallet) - {
        "member_id"
    }
    claim = IDEMPOTENCY_CLAIM
    assert set(inserted_columns(claim, "cashback_idempotencyrecord")) == set(
        columns(IdempotencyRecord)
    ) - {"id"}
    assert parameters(claim) == attributes(IdempotencyRecord)


ENTRY_STATEMENTS = {
    "ENTRY_APPEND": {"lot_available_at", "lot_expires_at"},
    "ENTRY_APPEND_SPENDING": {"spend_amount", "spend_first"},
    "ENTRY_APPEND_FOR_PROGRAMME": {
        "lot_available_at",
        "lot_expires_at",
        *_NO_USES,
        *_NO_BUDGETS,
        *_NO_MOVE,
    },
}


@pytest.mark.parametrize(("name", "more"), ENTRY_STATEMENTS.items())
def test_each_entry_statement_writes_every_field_and_names_its_parts_parameters(name, more):
    sql = getattr(cashback_queries, name)
    assert set(inserted_columns(sql, "cashback_ledgerentry")) == set(columns(LedgerEntry))
    draft = EventDraft(event=WebhookEvent(app_id=1, event_type="x"), head="", tail="", data={})
    given = attributes(LedgerEntry, key=True) - {"sequence", "type_sequence"}
    assert parameters(sql) == given | set(draft.params()) | more


def part(sql: str, start: str, end: str) -> str:
    return sql[sql.index(start) : sql.index(end, sql.index(start))]


def test_the_entry_statements_share_their_parts_text_with_the_statements_apart():
    # Written out in full in each, so that each pastes into psql: a change to one part is made
    # to every statement that holds it.
    append, spending, programme = (getattr(cashback_queries, name) for name in ENTRY_STATEMENTS)
    for other in (spending, programme):
        entry = "    INSERT INTO cashback_ledgerentry"
        assert part(other, entry, "last_of_type ON true") == part(
            append, entry, "last_of_type ON true"
        )
        event = "    INSERT INTO webhooks_webhookevent"
        assert part(other, event, "RETURNING id, body") == part(append, event, "RETURNING id, body")
        endpoints = "    ARRAY("
        assert part(other, endpoints, "FROM e ") == part(append, endpoints, "FROM e ")
    assert part(programme, "lot AS (", " FROM e") == part(append, "lot AS (", " FROM e")
    spend = cashback_queries.LOT_SPEND
    assert part(spending, "head AS (", "\nSELECT e.id") == part(spend, "head AS (", "\nSELECT 1")
    assert part(append, "    INSERT INTO webhooks_webhookevent", "RETURNING id, body") == part(
        EVENT_INSERT, "    INSERT INTO webhooks_webhookevent", "RETURNING id, body"
    )
    assert part(append, "    ARRAY(", "FROM e ") == part(EVENT_INSERT, "    ARRAY(", "FROM ev")
    assert f"LIMIT {cashback_queries.SPEND_HEAD})" in spend
    assert cashback_queries.MEMBER_CARD.count(f"LIMIT {cashback_queries.UPCOMING_EXPIRIES})") == 2


@pytest.mark.parametrize(("name", "sql"), statements(), ids=[n for n, _ in statements()])
def test_each_statement_stays_within_what_psycopg_keeps_converted(name, sql):
    # psycopg converts a statement's named parameters into PostgreSQL's once and keeps the
    # result, for statements of at most MAX_CACHED_STATEMENT_LENGTH characters and
    # MAX_CACHED_STATEMENT_PARAMS parameters; a longer one is parsed again at every call,
    # which cost an earn more of a worker's time than its rendering.
    assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH
    assert len(parameters(sql)) <= MAX_CACHED_STATEMENT_PARAMS


def test_the_hot_path_s_statements_keep_their_generic_plans(api, card, member, member_token):
    # A part a call does not need is switched off by a parameter: PostgreSQL must still find
    # one plan good for every call, or it plans the statement again at each one.
    for _ in range(8):
        earn(api, card, member, "100")
        redeemed = api.post(
            REDEEM, {"card_id": card.pk, "amount": "0.5"}, headers={"X-Member-Token": member_token}
        )
        assert redeemed.status_code == 200, redeemed.json()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s OR statement LIKE %s",
            ["%INSERT INTO cashback_ledgerentry%", "%UPDATE cashback_wallet w%"],
        )
        plans = cursor.fetchall()
    assert len(plans) >= 2  # the wallet's move and the entry's statement
    for statement, generic, custom in plans:
        assert generic >= 1, statement[:200]
        assert custom <= 5, statement[:200]

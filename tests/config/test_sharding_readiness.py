"""The data model is ready to be distributed by app on Citus: every tenant table carries its app,
every unique constraint and index leads with it, rows linked across tables belong to one app, and
every statement the merchant API runs names its app for each tenant table it touches (a query
Citus routes to one node).

Read from the migrated test database's own catalog (pg_catalog), not from the models.

Known gaps, to be closed when the tables are distributed (Django 5.2 cannot say them):
- Primary keys stay `id` alone (a ForeignKey cannot point at a composite key), and so do the
  unique constraints a OneToOneField puts on its own column (`ONE_TO_ONE_UNIQUES`): each names
  one row of a table whose `id` is unique, so `(app_id, id)` and `(app_id, …)` are what the
  migration to Citus swaps in.
- The ceiling of one-time codes to one address counts them across all apps (`members.otp`): a
  deliberate multi-shard read, with the one index that does not lead with the app.
- Tenant rows name staff users (`auth_user`, local to the coordinator): those foreign keys are
  listed (`LOCAL_FOREIGN_KEYS`), to become reference-table keys or be dropped at that time.
"""

import re
from typing import Any

import pytest
import sqlglot
from django.db import connection
from psycopg import sql as psql
from sqlglot import exp

from cards.models import Card
from members.models import Member
from tests.factories import CardFactory, MemberFactory

pytestmark = pytest.mark.django_db

API = "/api/v1/cashback"

# Distributed by `app_id`, co-located.
DISTRIBUTED = {
    "cards_card",
    "members_member",
    "apps_auth_otpchallenge",
    "cashback_wallet",
    "cashback_ledgerentry",
    "cashback_lot",
    "cashback_lotmovement",
    "cashback_claimsettlement",
    "cashback_adjustmentrequest",
    "cashback_idempotencyrecord",
    "webhooks_webhookendpoint",
    "webhooks_webhookevent",
    "webhooks_webhookdelivery",
    "programme_earningrule",
    "programme_ruleuse",
    "programme_tier",
    "programme_membertier",
}
# Replicated to every node: the apps themselves and their keys, read by key prefix before the
# app is known; small.
REFERENCE = {"apps_auth_app", "apps_auth_apikey"}
# Kept on the coordinator: Django's own, the admin's login throttling, the cache table and the
# task queue.
LOCAL = {
    "auth_group",
    "auth_group_permissions",
    "auth_permission",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "axes_accessattempt",
    "axes_accessattemptexpiration",
    "axes_accessfailurelog",
    "axes_accesslog",
    "cashback_cache",
    "django_admin_log",
    "django_content_type",
    "django_migrations",
    "django_session",
    "procrastinate_events",
    "procrastinate_jobs",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
}
ONE_TO_ONE_UNIQUES = {
    ("cashback_lot", "source_id"),
    ("cashback_ledgerentry", "idempotency_record_id"),
    ("cashback_adjustmentrequest", "entry_id"),
}
CROSS_APP_INDEXES = {("apps_auth_otpchallenge", "otp_destination_recent")}
# The one read across apps, by the column it is restricted by instead.
CROSS_APP_READS = {("apps_auth_otpchallenge", "destination_digest")}
LOCAL_FOREIGN_KEYS = {
    ("cashback_ledgerentry", "created_by_id", "auth_user"),
    ("cashback_ledgerentry", "approved_by_id", "auth_user"),
    ("cashback_adjustmentrequest", "requested_by_id", "auth_user"),
    ("cashback_adjustmentrequest", "decided_by_id", "auth_user"),
}


def rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_every_table_is_classified():
    tables = {
        name
        for (name,) in rows(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        )
    }
    unknown = tables - DISTRIBUTED - REFERENCE - LOCAL
    assert not unknown, f"classify these tables as distributed, reference or local: {unknown}"
    classified = DISTRIBUTED | REFERENCE | LOCAL
    assert tables >= classified, f"classified but missing: {classified - tables}"


def test_every_distributed_table_has_a_required_app_id():
    found = dict(
        rows(
            "SELECT c.relname, a.attnotnull FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND a.attname = 'app_id' AND NOT a.attisdropped"
        )
    )
    for table in sorted(DISTRIBUTED):
        assert table in found, f"{table} has no app_id column"
        assert found[table], f"{table}.app_id may be NULL"


def test_every_index_of_a_distributed_table_leads_with_app_id():
    """Unique ones (and so every unique constraint) included; the primary keys and one-to-one
    links aside (see the module's docstring)."""
    indexes = rows(
        "SELECT t.relname, i.relname, x.indisprimary, x.indisunique, "
        "pg_get_indexdef(x.indexrelid, 1, true), x.indnkeyatts, "
        "array(SELECT pg_get_indexdef(x.indexrelid, k, true) "
        "      FROM generate_series(1, x.indnkeyatts) k) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = current_schema() AND t.relname = ANY(%s)",
        [sorted(DISTRIBUTED)],
    )
    wrong = []
    for table, index, primary, unique, first, _, columns in indexes:
        if primary:
            assert columns == ["id"], f"{table}: primary key {index} on {columns}"
            continue
        if unique and len(columns) == 1 and (table, columns[0]) in ONE_TO_ONE_UNIQUES:
            continue
        if (table, index) in CROSS_APP_INDEXES:
            continue
        if first != "app_id":
            wrong.append(f"{table}.{index} ({'unique, ' if unique else ''}on {columns})")
    assert not wrong, "indexes that do not lead with app_id: " + "; ".join(wrong)
    # And no unique constraint stands without its index (exclusion constraints included).
    loose = rows(
        "SELECT conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "WHERE t.relname = ANY(%s) AND c.contype IN ('u', 'x') AND c.conindid = 0",
        [sorted(DISTRIBUTED)],
    )
    assert loose == []


def foreign_keys() -> list[tuple[str, str, str]]:
    """(table, column, referenced table) of every single-column foreign key from a distributed
    table."""
    return [
        (table, column, target)
        for table, column, target in rows(
            "SELECT t.relname, a.attname, r.relname FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND t.relname = ANY(%s) AND cardinality(c.conkey) = 1",
            [sorted(DISTRIBUTED)],
        )
    ]


def test_distributed_tables_refer_only_to_colocated_or_reference_tables():
    outside = {
        key for key in foreign_keys() if key[2] not in DISTRIBUTED and key[2] not in REFERENCE
    }
    assert outside == LOCAL_FOREIGN_KEYS


# -- The merchant API's statements -----------------------------------------------------------


class Statements:
    """Every statement run on the default connection, with its parameters."""

    def __init__(self):
        self.captured: list[tuple[str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        if many:
            for one in params:
                self.captured.append((sql, one))
        else:
            self.captured.append((sql, params))
        return execute(sql, params, many, context)


_NAMED = re.compile(r"%\((\w+)\)s")


def parsed(sql: str, params) -> tuple[Any, dict[str, object]]:
    """The statement parsed (PostgreSQL), its placeholders as `:name`, and their values."""
    values: dict[str, object] = {}
    if isinstance(params, dict):
        text = _NAMED.sub(lambda m: f":{m.group(1)}", sql)
        values = dict(params)
    else:
        pieces = sql.split("%s")
        text = pieces[0]
        for i, piece in enumerate(pieces[1:]):
            text += f":p{i}" + piece
            values[f"p{i}"] = (params or [])[i]
    return sqlglot.parse_one(text.replace("%%", "%"), read="postgres"), values


def _conjuncts(condition: exp.Expression | None) -> list[exp.Expression]:
    if condition is None:
        return []
    if isinstance(condition, exp.Where | exp.Paren):
        return _conjuncts(condition.this)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]


def _bare(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Cast | exp.Paren):
        node = node.this
    return node


def _owner(table: exp.Table) -> exp.Expression | None:
    """The SELECT, UPDATE or DELETE whose FROM or JOIN names `table`."""
    return table.find_ancestor(exp.Select, exp.Update, exp.Delete)


def _conditions(owner: exp.Expression) -> list[exp.Expression]:
    found = _conjuncts(owner.args.get("where"))
    for join in owner.args.get("joins") or []:
        found += _conjuncts(join.args.get("on"))
    return found


def _sources(owner: exp.Expression) -> list[exp.Table]:
    """The tables `owner` reads itself (not those of its subqueries)."""
    return [t for t in owner.find_all(exp.Table) if _owner(t) is owner]


def _cross_app_read(table: exp.Table) -> bool:
    owner = _owner(table)
    return owner is not None and any(
        isinstance(condition, exp.EQ)
        and isinstance(condition.this, exp.Column)
        and (table.name, condition.this.name) in CROSS_APP_READS
        for condition in _conditions(owner)
    )


def unrestricted(statement: exp.Expression, values: dict, app_pk: int) -> list[str]:
    """The distributed tables `statement` reads or writes without naming the app `app_pk`: each
    must be restricted by `app_id = <the app's value>` in its own WHERE or JOIN, or by
    `app_id = x.app_id` of a table `x` that is; a row it inserts must carry the app's value (or
    the app_id of a row the statement read under the same rule)."""

    def is_app_value(node: exp.Expression) -> bool:
        node = _bare(node)
        return isinstance(node, exp.Placeholder) and values.get(node.name) == app_pk

    ctes = {cte.alias for cte in statement.find_all(exp.CTE)}
    read: list[exp.Table] = []
    for table in statement.find_all(exp.Table):
        if isinstance(table.parent, exp.Schema) or (
            isinstance(table.parent, exp.Insert) and table.parent.this is table
        ):
            continue  # an INSERT's target: checked below
        if table.name in DISTRIBUTED:
            read.append(table)
    restricted: set[int] = set()
    changed = True
    while changed:  # restriction spreads along app_id = x.app_id
        changed = False
        for table in read:
            if id(table) in restricted:
                continue
            owner = _owner(table)
            if owner is None:
                continue
            alias = table.alias_or_name
            alone = len(_sources(owner)) == 1
            for condition in _conditions(owner):
                if not isinstance(condition, exp.EQ):
                    continue
                for mine, other in (
                    (condition.this, condition.expression),
                    (condition.expression, condition.this),
                ):
                    mine = _bare(mine)
                    if not (isinstance(mine, exp.Column) and mine.name == "app_id"):
                        continue
                    if mine.table not in (alias, "") or (not mine.table and not alone):
                        continue
                    other = _bare(other)
                    if is_app_value(other) or (
                        isinstance(other, exp.Column)
                        and other.name == "app_id"
                        and any(
                            id(t) in restricted and t.alias_or_name == other.table for t in read
                        )
                    ):
                        restricted.add(id(table))
                        changed = True
    problems = [
        f"{table.name} (as {table.alias_or_name})"
        for table in read
        if id(table) not in restricted and not _cross_app_read(table)
    ]
    for insert in statement.find_all(exp.Insert):
        target = insert.this.this if isinstance(insert.this, exp.Schema) else insert.this
        if target.name not in DISTRIBUTED:
            continue
        schema = insert.this
        columns = [c.name for c in schema.expressions] if isinstance(schema, exp.Schema) else []
        if "app_id" not in columns:
            problems.append(f"{target.name}: inserted without app_id")
            continue
        at = columns.index("app_id")
        source = insert.expression
        if isinstance(source, exp.Values):
            given = [row.expressions[at] for row in source.expressions]
        else:
            given = [source.selects[at]]
        for value in given:
            value = _bare(value)
            from_read = (
                isinstance(value, exp.Column)
                and value.name == "app_id"
                and (
                    value.table in ctes
                    or any(id(t) in restricted and t.alias_or_name == value.table for t in read)
                )
            )
            if not (is_app_value(value) or from_read):
                problems.append(f"{target.name}: inserted with app_id {value.sql()}")
    return problems


@pytest.fixture
def flow(merchant):
    """A merchant's day through the API, with its statements: a webhook endpoint, earns by member
    id, email, phone and for a new member, an OTP sign-in and a PIN, a redeem with the member
    token, a refund of an earning and one without, a reversal, balance, history with filters,
    a card."""
    api = merchant.client
    card = CardFactory.create(app=merchant.app, cashback_expiry_days=30, cashback_min_amount=0)
    Card.objects.filter(pk=card.pk).update(allows_pin_redemption=True)
    member = MemberFactory.create(app=merchant.app, email="amira@example.com", phone=None)
    phoned = MemberFactory.create(app=merchant.app, email=None, phone="+21620123456")
    # Another app's rows, which no statement may reach.
    other = CardFactory.create()
    MemberFactory.create(app=other.app, email="amira@example.com")

    def ok(response):
        assert response.status_code == 200, response.content
        return response.json()["data"]

    def post(path: str, headers: dict | None = None, **body):
        return ok(api.post(f"{API}/{path}", body, headers=headers))

    def get(path: str, **query):
        return ok(api.get(f"{API}/{path}", query))

    statements = Statements()
    with connection.execute_wrapper(statements):
        post("webhooks", url="http://127.0.0.1:9/hook")
        earn: dict[str, Any] = {"path": "cashback/earn", "card_id": card.pk}
        earned = post(
            **earn, member_id=member.pk, purchase_amount="100", headers={"Idempotency-Key": "k1"}
        )
        post(**earn, email=member.email, purchase_amount="40", reference="T-2")
        post(**earn, phone="20 123 456", purchase_amount="60")
        post(**earn, email="new@example.com", member_name="New", purchase_amount="20")
        post(**earn, email="both@example.com", phone="+21698765432", purchase_amount="20")
        get("members", phone="20 123 456")
        get("cashback/balance", card_id=card.pk, email=member.email)
        challenge = post("auth/otp/request", member_id=member.pk)  # a test app: the code in it
        code = challenge["test_code"]
        verified = post("auth/otp/verify", challenge_id=challenge["challenge_id"], code=code)
        signed_in = {"X-Member-Token": verified["member_token"]}
        post("members/pin", pin="4821", headers=signed_in)
        redeemed = post(
            "cashback/redeem", card_id=card.pk, amount="6", pin="4821", headers=signed_in
        )
        refund: dict[str, Any] = {
            "path": "cashback/refund",
            "card_id": card.pk,
            "refund_amount": "10",
        }
        post(**refund, member_id=member.pk, original_transaction_id=earned["transaction_id"])
        post(**refund, phone="+21620123456")
        post("cashback/reverse", card_id=card.pk, transaction_id=redeemed["transaction_id"])
        get("cashback/balance", card_id=card.pk, member_id=member.pk)
        get("cashback/history", card_id=card.pk, member_id=member.pk)
        get(
            "cashback/history",
            card_id=card.pk,
            member_id=phoned.pk,
            type="earning",
            created_after="2000-01-01T00:00:00Z",
            limit=5,
        )
        get(f"cards/{card.pk}")
    assert phoned.wallets.exists()
    assert Member.objects.filter(app=merchant.app, email="new@example.com").exists()
    return merchant.app, statements.captured


def test_every_statement_of_the_merchant_api_names_its_app(flow):
    app, captured = flow
    touching = 0
    problems: dict[str, None] = {}  # in order, once each
    for sql, params in captured:
        if not any(name in sql for name in DISTRIBUTED):
            continue  # savepoints, the task queue's functions, the cache table
        statement, values = parsed(sql, params)
        if not any(t.name in DISTRIBUTED for t in statement.find_all(exp.Table)):
            continue  # reference and local tables only, or no table at all
        touching += 1
        for problem in unrestricted(statement, values, app.pk):
            problems[f"{problem}\n    in: {sql}"] = None
    assert touching > 40, touching
    assert not problems, "statements not restricted to the app:\n" + "\n".join(problems)


def test_rows_linked_across_distributed_tables_belong_to_one_app(flow):
    """Checked on the data the flow wrote: for each foreign key between distributed tables, the
    row and the row it names have one app. (Declaring it, as composite foreign keys on
    (app_id, …) → (app_id, id), needs a unique (app_id, id) on every table beside its primary
    key: the migration to Citus, which makes the primary keys composite, declares them.)"""
    linked = [key for key in foreign_keys() if key[2] in DISTRIBUTED]
    assert len(linked) >= 15, linked
    for table, column, target in linked:
        [(_, mismatched)] = rows(
            psql.SQL(
                "SELECT count(*), count(*) FILTER (WHERE r.app_id <> t.app_id) FROM {} t "
                "JOIN {} r ON r.id = t.{}"
            )
            .format(psql.Identifier(table), psql.Identifier(target), psql.Identifier(column))
            .as_string()
        )
        assert mismatched == 0, f"{table}.{column}: {mismatched} rows of another app's {target}"
    # The flow wrote every kind of linked row.
    [(movements,)] = rows("SELECT count(*) FROM cashback_lotmovement")
    [(deliveries,)] = rows("SELECT count(*) FROM webhooks_webhookdelivery")
    assert movements > 0
    assert deliveries > 0

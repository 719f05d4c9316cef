"""The statements written out as SQL name real tables and columns: PostgreSQL plans each one
(EXPLAIN, nothing run) against the schema the models' migrations built."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from cashback.ledger_check import BREAKDOWNS_OFF_THEIR_ENTRY
from cashback.models import LOCK_FOR_PROGRAMME, PROGRAMME_FACTS
from programme.services import EVER, RULE_BUDGETS_LOCK, RULE_BUDGETS_TAKE, RULE_USES_COUNT
from tests.factories import CardFactory
from tests.helpers import earn

AT = datetime(2026, 12, 7, tzinfo=UTC)
FACTS = {"app": 1, "card": 1, "member": 1, "rules": [1, 2], "budgeted": [3], "at": AT}


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (PROGRAMME_FACTS, FACTS),
        (LOCK_FOR_PROGRAMME, FACTS),
        (
            RULE_USES_COUNT,
            {
                "app": 1,
                "uses_member": 1,
                "uses_rules": [1],
                "uses_pers": ["ever"],
                "uses_starts": [EVER],
            },
        ),
        (RULE_BUDGETS_TAKE, {"app": 1, "budget_rules": [1, 2], "budget_taken": [Decimal(1)] * 2}),
        (RULE_BUDGETS_LOCK, {"app": 1, "rules": [1, 2]}),
        (BREAKDOWNS_OFF_THEIR_ENTRY, {}),
    ],
    ids=["facts", "lock", "uses", "budgets", "budgets_lock", "breakdowns"],
)
def test_each_written_out_statement_is_planned_on_the_real_schema(db, sql, params):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params or None)
        assert cursor.fetchall()


def test_the_facts_are_planned_alike_whatever_the_time(api, merchant, member):
    """Planned again at each earn, the facts cost more than they take to run. Their plan must
    not hang on the earn's time: a custom plan then costs what the generic one does, and
    PostgreSQL keeps the prepared statement's generic plan after its first custom ones."""
    card = CardFactory.create(app=merchant.app, cashback_expiry_days=30, cashback_min_amount=0)
    for _ in range(20):  # lots that expire, one per earn
        earn(api, card, member, "10")
    params = {**FACTS, "app": merchant.app.pk, "card": card.pk, "member": member.pk}
    costs = []
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cashback_lot")
        for at in (AT - timedelta(days=3650), AT + timedelta(days=3650)):
            cursor.execute("EXPLAIN (FORMAT JSON) " + PROGRAMME_FACTS, {**params, "at": at})
            costs.append(cursor.fetchone()[0][0]["Plan"]["Total Cost"])
    assert costs[0] == costs[1]

"""The statements written out as SQL name real tables and columns: PostgreSQL plans each one
(EXPLAIN, nothing run) against the schema the models' migrations built."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from cashback.ledger_check import BREAKDOWNS_OFF_THEIR_ENTRY
from cashback.models import LOCK_MEMBER_WALLET, PROGRAMME_FACTS
from programme.services import EVER, RULE_BUDGET_TAKE, RULE_USES_COUNT

AT = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (PROGRAMME_FACTS, {"app": 1, "card": 1, "member": 1, "rules": [1, 2], "at": AT}),
        (LOCK_MEMBER_WALLET, {"app": 1, "card": 1, "member": 1}),
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
        (RULE_BUDGET_TAKE, {"app": 1, "rule": 1, "wanted": Decimal(1)}),
        (BREAKDOWNS_OFF_THEIR_ENTRY, {}),
    ],
    ids=["facts", "lock", "uses", "budget", "breakdowns"],
)
def test_each_written_out_statement_is_planned_on_the_real_schema(db, sql, params):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params or None)
        assert cursor.fetchall()

"""The statements written out as SQL name real tables and columns: PostgreSQL plans each one
(EXPLAIN, nothing run) against the schema the models' migrations built."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from cashback.ledger_check import BREAKDOWNS_OFF_THEIR_ENTRY
from cashback.models import LOCK_FOR_PROGRAMME, PROGRAMME_FACTS, WALLET_MOVE
from programme.services import RULE_BUDGETS_LOCK, RULE_BUDGETS_TAKE, RULE_USES_COUNT

AT = datetime(2026, 12, 7, tzinfo=UTC)
FACTS = {
    "app": 1,
    "card": 1,
    "member": 1,
    "budgeted": "{3}",
}


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (PROGRAMME_FACTS, FACTS),
        (LOCK_FOR_PROGRAMME, FACTS),
        (
            WALLET_MOVE,
            {
                "app": 1,
                "wallet": 1,
                "move_amount": Decimal(1),
                "move_pending": Decimal(0),
                "move_inactive_at": None,
                "move_now": AT,
            },
        ),
        (
            RULE_USES_COUNT,
            {
                "app": 1,
                "uses_member": 1,
                "uses_rules": "{1}",
                "uses_pers": "{ever}",
                "uses_starts": "{0001-01-01}",
            },
        ),
        (RULE_BUDGETS_TAKE, {"app": 1, "budget_rules": "{1,2}", "budget_taken": "{1,2.5}"}),
        (RULE_BUDGETS_LOCK, {"app": 1, "rules": "{1,2}"}),
        (BREAKDOWNS_OFF_THEIR_ENTRY, {}),
    ],
    ids=["facts", "lock", "move", "uses", "budgets", "budgets_lock", "breakdowns"],
)
def test_each_written_out_statement_is_planned_on_the_real_schema(db, sql, params):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params or None)
        assert cursor.fetchall()


def test_the_wallet_lock_keeps_its_generic_plan(api, card, member):
    # Planned again at each earn, the lock with the member's facts cost more than it took to
    # run: no parameter of it may make PostgreSQL prefer a plan of its own for each earn.
    from tests.factories import RuleFactory
    from tests.helpers import earn

    RuleFactory.create(card=card, max_uses_per_member=100, per="day")
    for _ in range(8):
        earn(api, card, member, "100")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s AND statement LIKE %s",
            ["%AS rule_uses%", "%FOR UPDATE OF w%"],
        )
        [(generic, custom)] = cursor.fetchall()
    assert generic >= 2
    assert custom <= 5


def test_the_lock_reads_the_member_s_facts_as_the_quote_does():
    # Written out in full twice, so that each pastes into psql: the lock's statement is the
    # quote's with the wallet's balances, its next entry's id and a lock added, and a change to
    # the facts one reads must be made to the other.
    select, _, where = PROGRAMME_FACTS.partition("FROM cashback_wallet w\n")
    assert LOCK_FOR_PROGRAMME.startswith(select.rstrip())
    assert LOCK_FOR_PROGRAMME.endswith("FROM cashback_wallet w\n" + where + "FOR UPDATE OF w\n")

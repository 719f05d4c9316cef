"""The wallet's lock with the member's facts keeps its generic plan and reads those facts as
the quote's statement does (the statements themselves: `tests/core/test_queries.py`)."""

from django.db import connection

from cashback.queries import LOCK_FOR_PROGRAMME, PROGRAMME_FACTS


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

"""An existing database migrates in place when every use of a rule starts being counted `ever`:
each member's `ever` count of a rule becomes all its uses, so that a rule's `uses` and a
limit per `ever` keep counting every earlier use; and back."""

from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from programme.models import RuleUse
from programme.services import rule_uses
from tests.factories import CardFactory, MemberFactory, RuleFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("programme", "0001_initial")]
EVER = date(1, 1, 1)


def migrate(targets) -> None:
    MigrationExecutor(connection).migrate(targets)


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def before():
    """The database before every use was counted `ever`; afterwards at the latest again."""
    migrate(BEFORE)
    try:
        yield
    finally:
        migrate(latest())


def counts(card) -> dict:
    rows = RuleUse.objects.filter(app_id=card.app_id)
    return {(u.member_id, u.rule_id, u.per, u.period_start): u.uses for u in rows}


def test_each_member_s_ever_count_becomes_all_its_uses_of_the_rule_and_back(before):
    card = CardFactory.create()
    first, second = MemberFactory.create_batch(2, app=card.app)
    anyway = RuleFactory.create(card=card)
    monthly = RuleFactory.create(card=card, max_uses_per_member=2, per="month")
    daily = RuleFactory.create(card=card, max_uses_per_member=1, per="day")
    for member, rule, per, start, uses in (
        (first, anyway, "ever", EVER, 5),
        (first, monthly, "month", date(2026, 11, 1), 2),
        (first, monthly, "month", date(2026, 12, 1), 1),
        (first, monthly, "ever", EVER, 3),  # counted while it had no limit
        (second, anyway, "ever", EVER, 4),
        (first, daily, "day", date(2026, 11, 30), 1),  # a Monday
        (first, daily, "day", date(2026, 12, 1), 1),
        (first, daily, "day", date(2026, 12, 6), 1),  # a Sunday
        (first, daily, "month", date(2026, 12, 1), 1),  # when it was monthly
        (first, anyway, "week", date(2026, 12, 7), 2),  # within December
        (first, anyway, "week", date(2026, 12, 28), 1),  # into January
    ):
        RuleUse.objects.create(
            app_id=card.app_id, member=member, rule=rule, per=per, period_start=start, uses=uses
        )
    old = counts(card)

    migrate(latest())

    assert counts(card) == {
        **old,
        (first.pk, monthly.pk, "ever", EVER): 6,
        (first.pk, monthly.pk, "year", date(2026, 1, 1)): 3,
        (first.pk, daily.pk, "ever", EVER): 4,
        (first.pk, daily.pk, "week", date(2026, 11, 30)): 3,
        (first.pk, daily.pk, "month", date(2026, 11, 1)): 1,
        (first.pk, daily.pk, "month", date(2026, 12, 1)): 3,
        (first.pk, daily.pk, "year", date(2026, 1, 1)): 4,
        (first.pk, anyway.pk, "ever", EVER): 8,
        (first.pk, anyway.pk, "month", date(2026, 12, 1)): 2,
        (first.pk, anyway.pk, "year", date(2026, 1, 1)): 2,
    }
    assert rule_uses([anyway, monthly, daily]) == {
        anyway.pk: 12,
        monthly.pk: 6,
        daily.pk: 4,
    }

    migrate(BEFORE)
    # Back: each use counted once again, in the rule's period or ever: the daily rule's month
    # and the rule without a limit's weeks in their ever.
    gone = {
        (first.pk, daily.pk, "month", date(2026, 12, 1)),
        (first.pk, anyway.pk, "week", date(2026, 12, 7)),
        (first.pk, anyway.pk, "week", date(2026, 12, 28)),
    }
    assert counts(card) == {
        **{key: n for key, n in old.items() if key not in gone},
        (first.pk, daily.pk, "ever", EVER): 1,
        (first.pk, anyway.pk, "ever", EVER): 8,
    }

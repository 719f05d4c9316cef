"""An existing database migrates in place when a member's uses of a card's rules move from one
row per rule and period to one row per member and card: every use is kept in each rule's
`uses`, and each limit goes on counting in the period it was counting in, there and back."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from programme.models import RuleUses
from programme.services import EarnCounters, rule_uses
from tests.factories import CardFactory, MemberFactory, RuleFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("programme", "0001_initial")]
EVER = date(1, 1, 1)


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def before():
    """The database as it was with one row per rule and period; its historical models.
    Afterwards it is at the latest migrations again, whatever the test does."""
    migrate(BEFORE)
    try:
        yield MigrationExecutor(connection).loader.project_state(BEFORE).apps
    finally:
        migrate(latest())


def test_uses_move_to_one_row_per_member_and_card_with_nothing_lost(before):
    OldRuleUse = before.get_model("programme", "RuleUse")
    card = CardFactory.create()
    first, second = MemberFactory.create_batch(2, app=card.app)
    anyway = RuleFactory.create(card=card)
    monthly = RuleFactory.create(card=card, max_uses_per_member=2, per="month")
    # Limited per week since December; counted `ever` before.
    weekly = RuleFactory.create(card=card, max_uses_per_member=3, per="week")
    for member, rule, per, start, uses in (
        (first, anyway, "ever", EVER, 5),
        (first, monthly, "month", date(2026, 11, 1), 2),
        (first, monthly, "month", date(2026, 12, 1), 1),
        (first, weekly, "ever", EVER, 3),
        (first, weekly, "week", date(2026, 11, 30), 1),
        (second, anyway, "ever", EVER, 4),
    ):
        OldRuleUse.objects.create(
            app_id=card.app_id, member_id=member.pk, rule_id=rule.pk, per=per,
            period_start=start, uses=uses,
        )  # fmt: skip

    migrate(latest())

    rows = {row.member_id: row.uses for row in RuleUses.objects.filter(card=card)}
    assert rows == {
        first.pk: {
            str(anyway.pk): {
                "uses": 5, "per": "ever", "period_start": "0001-01-01", "period_uses": 5
            },
            str(monthly.pk): {
                "uses": 3, "per": "month", "period_start": "2026-12-01", "period_uses": 1
            },
            str(weekly.pk): {
                "uses": 4, "per": "week", "period_start": "2026-11-30", "period_uses": 1
            },
        },
        second.pk: {
            str(anyway.pk): {
                "uses": 4, "per": "ever", "period_start": "0001-01-01", "period_uses": 4
            },
        },
    }  # fmt: skip
    assert rule_uses([anyway.pk, monthly.pk, weekly.pk]) == {
        anyway.pk: 9,
        monthly.pk: 3,
        weekly.pk: 4,
    }
    counters = EarnCounters(card=card, member_id=first.pk, uses=rows[first.pk])
    assert counters.uses_left(monthly, datetime(2026, 12, 5, 12, tzinfo=UTC)) == 1
    assert counters.uses_left(monthly, datetime(2027, 1, 5, 12, tzinfo=UTC)) == 2
    assert counters.uses_left(weekly, datetime(2026, 12, 2, 12, tzinfo=UTC)) == 2
    assert counters.uses_left(weekly, datetime(2026, 12, 7, 12, tzinfo=UTC)) == 3

    # And back: each rule's uses and its current period's are what they were.
    migrate(BEFORE)
    state = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    back = state.get_model("programme", "RuleUse").objects.filter(app_id=card.app_id)
    kept = {(u.member_id, u.rule_id, u.per, u.period_start): u.uses for u in back}
    assert kept == {
        (first.pk, anyway.pk, "ever", EVER): 5,
        (first.pk, monthly.pk, "month", date(2026, 12, 1)): 1,
        (first.pk, monthly.pk, "ever", EVER): 2,
        (first.pk, weekly.pk, "week", date(2026, 11, 30)): 1,
        (first.pk, weekly.pk, "ever", EVER): 3,
        (second.pk, anyway.pk, "ever", EVER): 4,
    }

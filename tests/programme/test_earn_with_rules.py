"""Earns on a card with earning rules: each rule's conditions, limits, order and stacking, and
the breakdown that says why."""

from datetime import UTC, datetime, time
from decimal import Decimal
from unittest import mock

import pytest

from cashback.models import LedgerEntry
from programme.services import rule_uses
from tests.factories import MemberFactory, RuleFactory
from tests.helpers import earn, error

EARN = "/api/v1/cashback/cashback/earn"
COFFEE = {"sku": "COF-1", "category": "coffee", "amount": "30"}
MUG = {"sku": "MUG-1", "category": "kitchen", "amount": "20"}


def parts(answer: dict) -> list[tuple]:
    return [(p["source"], p["rule_id"], p["amount"]) for p in answer["breakdown"]]


def at(text: str):
    """Runs the earn at this instant."""
    return mock.patch("django.utils.timezone.now", return_value=datetime.fromisoformat(text))


def test_a_bonus_on_a_category_earns_on_its_lines_only(api, card, member):
    rule = RuleFactory.create(card=card, percentage=Decimal(10), categories=["coffee"])
    answer = earn(api, card, member, "50", lines=[COFFEE, MUG])
    # Base 5 % of 50 = 2.5; 10 % of the coffee line's 30 = 3.
    assert parts(answer) == [("card", None, 2.5), ("rule", rule.pk, 3)]
    assert answer["cashback_earned"] == 5.5
    entry = LedgerEntry.objects.get()
    assert entry.amount == Decimal("5.5")
    assert entry.breakdown is not None
    assert entry.lines is not None
    assert entry.breakdown[1]["lines"] == [0]
    assert entry.lines[1]["sku"] == "MUG-1"


def test_a_rule_on_categories_matches_no_purchase_without_lines(api, card, member):
    RuleFactory.create(card=card, categories=["coffee"])
    answer = earn(api, card, member, "50")
    assert parts(answer) == [("card", None, 2.5)]


def test_a_multiplier_multiplies_the_capped_base(api, merchant, member):
    from tests.factories import CardFactory

    card = CardFactory.create(app=merchant.app, cashback_max_amount=Decimal(2))
    rule = RuleFactory.create(card=card, kind="multiplier", factor=Decimal(3), percentage=None)
    answer = earn(api, card, member, "100")
    # The base is capped at 2; "triple" adds (3 − 1) × that base, never more.
    assert parts(answer) == [("card", None, 2), ("rule", rule.pk, 4)]
    assert answer["cashback_earned"] == 6
    uncapped = earn(api, card, member, "20")  # 5 % of 20 = 1, under the cap
    assert parts(uncapped) == [("card", None, 1), ("rule", rule.pk, 2)]


def test_each_contribution_is_rounded_on_its_own_and_adds_up(api, card, member):
    first = RuleFactory.create(card=card, percentage=Decimal("0.333"), priority=1)
    second = RuleFactory.create(card=card, percentage=Decimal("0.333"), priority=2)
    answer = earn(api, card, member, "10.005")
    # Base 0.50025 → 0.500; each bonus 0.0333166… → 0.033.
    assert parts(answer) == [
        ("card", None, 0.5),
        ("rule", first.pk, 0.033),
        ("rule", second.pk, 0.033),
    ]
    assert answer["cashback_earned"] == 0.566


def test_rules_apply_in_priority_order_and_a_non_stackable_one_stops_the_rest(api, card, member):
    later = RuleFactory.create(card=card, percentage=Decimal(1), priority=20)
    stopper = RuleFactory.create(card=card, percentage=Decimal(2), priority=10, stackable=False)
    first = RuleFactory.create(card=card, percentage=Decimal(3), priority=5)
    answer = earn(api, card, member, "100")
    assert parts(answer) == [("card", None, 5), ("rule", first.pk, 3), ("rule", stopper.pk, 2)]
    assert later.pk not in [p["rule_id"] for p in answer["breakdown"]]


def test_a_non_stackable_rule_that_does_not_apply_stops_nothing(api, card, member):
    RuleFactory.create(card=card, priority=1, stackable=False, min_purchase=Decimal(500))
    later = RuleFactory.create(card=card, percentage=Decimal(1), priority=2)
    answer = earn(api, card, member, "100")
    assert parts(answer) == [("card", None, 5), ("rule", later.pk, 1)]


def test_a_fixed_bonus_and_the_per_transaction_cap(api, card, member):
    bonus = RuleFactory.create(
        card=card, kind="fixed_bonus", percentage=None, amount=Decimal(3), priority=1
    )
    capped = RuleFactory.create(card=card, percentage=Decimal(50), max_per_transaction=Decimal(4))
    answer = earn(api, card, member, "100")
    assert parts(answer) == [("card", None, 5), ("rule", bonus.pk, 3), ("rule", capped.pk, 4)]


def test_a_first_purchase_rule_applies_to_the_first_earning_only(api, card, member):
    rule = RuleFactory.create(
        card=card, kind="fixed_bonus", percentage=None, amount=Decimal(5), first_purchase_only=True
    )
    assert parts(earn(api, card, member, "100")) == [("card", None, 5), ("rule", rule.pk, 5)]
    assert parts(earn(api, card, member, "100")) == [("card", None, 5)]


def test_a_first_purchase_rule_rewards_a_new_member_created_by_the_earn(api, card):
    rule = RuleFactory.create(
        card=card, kind="fixed_bonus", percentage=None, amount=Decimal(5), first_purchase_only=True
    )
    response = api.post(
        EARN, {"card_id": card.pk, "email": "new@example.com", "purchase_amount": "100"}
    )
    data = response.json()["data"]
    assert data["member_created"] is True
    assert parts(data) == [("card", None, 5), ("rule", rule.pk, 5)]


def test_dates_days_and_hours_are_read_in_the_cards_time_zone(api, card, member):
    # Africa/Tunis is UTC+1. Saturday 2026-12-05 23:30 in Tunis is 22:30 UTC.
    rule = RuleFactory.create(
        card=card,
        days_of_week=[6],
        hours_from=time(22, 0),
        hours_to=time(2, 0),
        starts_at=datetime(2026, 12, 1, tzinfo=UTC),
        ends_at=datetime(2026, 12, 31, tzinfo=UTC),
    )
    with at("2026-12-05T22:30:00+00:00"):  # Saturday 23:30 local: inside
        assert rule.pk in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]
    with at("2026-12-06T00:30:00+00:00"):  # Sunday 01:30 local: past midnight, but Sunday
        assert rule.pk not in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]
    with at("2026-12-05T20:59:00+00:00"):  # Saturday 21:59 local: before the window
        assert rule.pk not in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]
    with at("2026-12-31T00:00:00+00:00"):  # the end is exclusive
        assert rule.pk not in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]


def test_hours_that_wrap_past_midnight_include_the_early_morning(api, card, member):
    rule = RuleFactory.create(card=card, hours_from=time(22, 0), hours_to=time(2, 0))
    with at("2026-12-06T00:59:00+00:00"):  # 01:59 local
        assert rule.pk in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]
    with at("2026-12-06T01:00:00+00:00"):  # 02:00 local: the end is exclusive
        assert rule.pk not in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]


def test_hours_follow_daylight_saving_in_the_cards_zone(api, merchant, member):
    from tests.factories import CardFactory

    card = CardFactory.create(app=merchant.app, time_zone="Europe/Paris")
    rule = RuleFactory.create(card=card, hours_from=time(9, 0), hours_to=time(10, 0))
    # Paris is UTC+1 in winter, UTC+2 from 2026-03-29: 9:30 local is 08:30 UTC, then 07:30 UTC.
    with at("2026-03-28T08:30:00+00:00"):
        assert rule.pk in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]
    with at("2026-03-30T07:30:00+00:00"):
        assert rule.pk in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]
    with at("2026-03-30T08:30:00+00:00"):  # 10:30 local after the change
        assert rule.pk not in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]


def test_uses_per_member_are_counted_per_calendar_period(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=2, per="month")
    other = MemberFactory.create(app=card.app)
    applied = []
    for day in ("2026-11-29", "2026-11-30", "2026-11-30", "2026-12-01"):
        with at(f"{day}T12:00:00+00:00"):
            answer = earn(api, card, member, "100")
        applied.append(rule.pk in [p["rule_id"] for p in answer["breakdown"]])
    assert applied == [True, True, False, True]
    # Another member has uses of their own.
    with at("2026-11-30T12:00:00+00:00"):
        assert rule.pk in [p["rule_id"] for p in earn(api, card, other, "100")["breakdown"]]
    assert rule_uses([rule]) == {rule.pk: 4}


def test_a_month_begins_at_midnight_in_the_cards_zone(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=1, per="month")
    with at("2026-11-30T22:30:00+00:00"):  # 23:30 on 30 November in Tunis
        assert rule.pk in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]
    with at("2026-11-30T23:30:00+00:00"):  # 00:30 on 1 December in Tunis: a new month
        assert rule.pk in [p["rule_id"] for p in earn(api, card, member, "100")["breakdown"]]


def test_an_inactive_rule_applies_no_more(api, card, member):
    RuleFactory.create(card=card, active=False)
    assert parts(earn(api, card, member, "100")) == [("card", None, 5)]


def test_a_replay_answers_the_same_breakdown_and_counts_no_use(api, card, member):
    rule = RuleFactory.create(card=card, max_uses_per_member=5, per="ever", budget=Decimal(100))
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"}
    first = api.post(EARN, body, headers={"Idempotency-Key": "k-1"}).json()
    again = api.post(EARN, body, headers={"Idempotency-Key": "k-1"}).json()
    assert first == again
    rule.refresh_from_db()
    assert rule.budget_spent == Decimal(10)
    assert rule_uses([rule]) == {rule.pk: 1}


def test_lines_must_add_up_to_the_purchase(api, card, member):
    body = {
        "card_id": card.pk,
        "member_id": member.pk,
        "purchase_amount": "60",
        "lines": [COFFEE, MUG],
    }
    response = api.post(EARN, body)
    assert response.status_code == 400
    assert response.json() == error("validation_error", details={"lines": [mock.ANY]})
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    "lines",
    [
        [{"sku": "", "amount": "50"}],
        [{"sku": "A", "amount": "0"}],
        [{"sku": "A", "amount": "50", "quantity": 0}],
        [{"sku": "A", "amount": "50", "colour": "red"}],
        [{"sku": "A" * 65, "amount": "50"}],
        [{"sku": "A", "amount": "50.0001"}],
        [{"sku": f"S{i}", "amount": "0.5"} for i in range(101)],
        [],
    ],
)
def test_bad_lines_are_a_400_and_change_nothing(api, card, member, lines):
    total = sum((Decimal(line["amount"]) for line in lines), Decimal(0)) or Decimal(50)
    body = {
        "card_id": card.pk,
        "member_id": member.pk,
        "purchase_amount": str(total),
        "lines": lines,
    }
    response = api.post(EARN, body)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "validation_error"
    assert not LedgerEntry.objects.exists()


def test_a_hundred_lines_are_accepted(api, card, member):
    lines = [{"sku": f"S{i}", "amount": "0.5"} for i in range(100)]
    answer = earn(api, card, member, "50", lines=lines)
    assert answer["cashback_earned"] == 2.5


def test_the_earned_event_carries_the_breakdown(api, card, member):
    import json

    from webhooks.models import WebhookEvent

    rule = RuleFactory.create(card=card, percentage=Decimal(10), categories=["coffee"])
    answer = earn(api, card, member, "50", lines=[COFFEE, MUG])
    event = WebhookEvent.objects.get(event_type="cashback.earned")
    data = json.loads(event.body)["data"]
    assert data["breakdown"] == answer["breakdown"]
    assert [p["rule_id"] for p in data["breakdown"]] == [None, rule.pk]


def test_history_items_carry_the_breakdown(api, card, member):
    rule = RuleFactory.create(card=card, percentage=Decimal(10))
    earn(api, card, member, "100")
    items = api.get(
        "/api/v1/cashback/cashback/history", {"card_id": card.pk, "member_id": member.pk}
    ).json()["data"]["transactions"]
    assert [(p["source"], p["rule_id"], p["amount"]) for p in items[0]["breakdown"]] == [
        ("card", None, 5),
        ("rule", rule.pk, 10),
    ]

"""Tiers: qualifying spend, the upgrade for the next earn, retention, the worker's downgrade,
staff's override, the event, and the tier in balance."""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest

from cashback.services.tiers import cashback_tiers_review, member_tier_staff_set
from programme.models import MemberTier
from tests.factories import CardFactory, RuleFactory, TierFactory
from tests.helpers import earn
from webhooks.models import WebhookEvent

BALANCE = "/api/v1/cashback/cashback/balance"
REFUND = "/api/v1/cashback/cashback/refund"


@pytest.fixture
def tiered(merchant):
    card = CardFactory.create(
        app=merchant.app, cashback_max_amount=None, tier_period_days=30, tier_retention_days=60
    )
    silver = TierFactory.create(
        card=card, name="Silver", threshold=Decimal(100), cashback_percentage=6
    )
    gold = TierFactory.create(card=card, name="Gold", threshold=Decimal(500), cashback_percentage=8)
    return card, silver, gold


def at(when: datetime):
    return mock.patch("django.utils.timezone.now", return_value=when)


T0 = datetime.fromisoformat("2026-06-01T12:00:00+00:00")


def tier_events() -> list[dict]:
    events = WebhookEvent.objects.filter(event_type="member.tier_changed").order_by("id")
    return [json.loads(event.body)["data"] for event in events]


def test_the_earn_that_crosses_a_threshold_is_at_the_old_rate_the_next_at_the_new(
    api, tiered, member
):
    card, silver, gold = tiered
    with at(T0):
        first = earn(api, card, member, "120")
        second = earn(api, card, member, "100")
    assert [(p["source"], p["name"], p["amount"]) for p in first["breakdown"]] == [
        ("card", card.name, 6)
    ]
    assert [(p["source"], p["name"], p["amount"]) for p in second["breakdown"]] == [
        ("tier", "Silver", 6)
    ]
    assert second["cashback_percentage"] == 6
    assert tier_events() == [
        {
            "member_id": member.pk,
            "card_id": card.pk,
            "from": None,
            "to": "Silver",
            "reason": "upgrade",
            "changed_at": "2026-06-01T12:00:00Z",
        }
    ]


def test_balance_answers_the_tier_with_the_way_to_the_next(api, tiered, member):
    card, _, _ = tiered
    with at(T0):
        earn(api, card, member, "150")
        data = api.get(BALANCE, {"card_id": card.pk, "member_id": member.pk}).json()["data"]
    assert data["tier"] == {
        "name": "Silver",
        "cashback_percentage": 6,
        "qualifying_spend": 150,
        "next_tier": "Gold",
        "spend_to_next": 350,
        "retained_until": "2026-07-31T12:00:00Z",
    }


def test_balance_answers_no_tier_before_one_is_reached(api, tiered, member):
    card, _, _ = tiered
    earn(api, card, member, "50")
    data = api.get(BALANCE, {"card_id": card.pk, "member_id": member.pk}).json()["data"]
    assert data["tier"] is None


def test_refunds_never_take_a_tier_away_before_its_retention_ends(api, tiered, member):
    card, _, _ = tiered
    with at(T0):
        earning = earn(api, card, member, "150")
        api.post(
            REFUND,
            {
                "card_id": card.pk,
                "member_id": member.pk,
                "refund_amount": "150",
                "original_transaction_id": earning["transaction_id"],
            },
        )
    with at(T0 + timedelta(days=59)):
        assert cashback_tiers_review().changed == 0
        assert earn(api, card, member, "50")["breakdown"][0]["source"] == "tier"
    # The retention has ended: the worker moves the member down to what the spend supports.
    with at(T0 + timedelta(days=61)):
        assert cashback_tiers_review().changed == 1
        assert earn(api, card, member, "10")["breakdown"][0]["source"] == "card"
    assert [(e["from"], e["to"], e["reason"]) for e in tier_events()] == [
        (None, "Silver", "upgrade"),
        ("Silver", None, "downgrade"),
    ]
    assert MemberTier.objects.get().tier is None


def test_a_tier_still_supported_at_its_review_is_kept_another_period(api, tiered, member):
    card, _, _ = tiered
    with at(T0):
        earn(api, card, member, "150")
    with at(T0 + timedelta(days=55)):
        earn(api, card, member, "150")  # within the 30-day period at the review
    with at(T0 + timedelta(days=61)):
        assert cashback_tiers_review().changed == 0
    row = MemberTier.objects.get()
    assert row.tier is not None
    assert row.retained_until == T0 + timedelta(days=61 + 60)
    assert len(tier_events()) == 1


def test_the_worker_moves_down_one_tier_when_the_spend_supports_it(api, tiered, member):
    card, _, _ = tiered
    with at(T0):
        earn(api, card, member, "600")  # Gold from the next earn
    with at(T0 + timedelta(days=40)):
        earn(api, card, member, "200")  # at Gold; the 30-day spend is now 200: Silver
    with at(T0 + timedelta(days=61)):
        assert cashback_tiers_review().changed == 1
    tier = MemberTier.objects.get().tier
    assert tier is not None
    assert tier.name == "Silver"
    assert tier_events()[-1]["reason"] == "downgrade"


def test_staff_set_a_tier_with_a_reason(api, tiered, member):
    card, _, gold = tiered
    member_tier_staff_set(card=card, member_id=member.pk, tier=gold, note="VIP customer")
    assert earn(api, card, member, "100")["breakdown"][0] == {
        "source": "tier",
        "rule_id": None,
        "name": "Gold",
        "amount": 8,
    }
    row = MemberTier.objects.get()
    assert (row.reason, row.note) == ("staff", "VIP customer")
    assert tier_events()[-1]["reason"] == "staff"
    with pytest.raises(ValueError, match="reason"):
        member_tier_staff_set(card=card, member_id=member.pk, tier=None, note="  ")
    other = TierFactory.create(card=CardFactory.create(app=card.app), name="Elsewhere")
    with pytest.raises(ValueError, match="card"):
        member_tier_staff_set(card=card, member_id=member.pk, tier=other, note="x")


def test_a_rule_for_a_tier_applies_to_its_members_only(api, tiered, member, merchant):
    card, silver, _ = tiered
    rule = RuleFactory.create(card=card, percentage=Decimal(1), tiers=["Silver"])
    with at(T0):
        first = earn(api, card, member, "150")
        second = earn(api, card, member, "100")
    assert rule.pk not in [p["rule_id"] for p in first["breakdown"]]
    assert rule.pk in [p["rule_id"] for p in second["breakdown"]]


def test_a_tier_at_zero_is_every_members_from_the_first_earn(api, merchant, member):
    card = CardFactory.create(app=merchant.app, cashback_max_amount=None)
    TierFactory.create(card=card, name="Member", threshold=Decimal(0), cashback_percentage=6)
    before = api.get(BALANCE, {"card_id": card.pk, "member_id": member.pk}).json()["data"]
    assert before["tier"]["name"] == "Member"  # no spend is needed to reach it
    first = earn(api, card, member, "100")
    assert first["breakdown"][0] == {
        "source": "tier",
        "rule_id": None,
        "name": "Member",
        "amount": 6,
    }
    balance = api.get(BALANCE, {"card_id": card.pk, "member_id": member.pk}).json()["data"]
    assert balance["tier"]["name"] == "Member"

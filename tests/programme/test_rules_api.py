"""The rules and tiers API: create, list, change, deactivate; scopes; another app's."""

from decimal import Decimal
from unittest import mock

import pytest

from programme.models import EarningRule, Tier
from tests.factories import CardFactory, RuleFactory, TierFactory
from tests.helpers import earn, error

BONUS = {"name": "x", "kind": "bonus_percentage", "percentage": 1}


def rules_path(card) -> str:
    return f"/api/v1/cashback/cards/{card.pk}/rules"


def tiers_path(card) -> str:
    return f"/api/v1/cashback/cards/{card.pk}/tiers"


def test_a_rule_is_created_with_every_field_and_listed(api, card):
    TierFactory.create(card=card, name="gold")
    body = {
        "name": "Coffee evenings",
        "kind": "bonus_percentage",
        "percentage": "10",
        "priority": 5,
        "stackable": False,
        "starts_at": "2026-12-01T00:00:00Z",
        "ends_at": "2027-01-01T00:00:00Z",
        "days_of_week": [5, 6, 6],
        "hours": {"from": "18:00", "to": "02:00"},
        "categories": ["coffee"],
        "skus": ["MUG-1"],
        "min_purchase": "20",
        "tiers": ["gold"],
        "first_purchase_only": False,
        "max_per_transaction": "15",
        "max_uses_per_member": 3,
        "per": "week",
        "budget": "1000",
    }
    response = api.post(rules_path(card), body)
    assert response.status_code == 200, response.json()
    rule = response.json()["data"]
    assert rule == {
        "id": EarningRule.objects.get().pk,
        "card_id": card.pk,
        "name": "Coffee evenings",
        "kind": "bonus_percentage",
        "factor": None,
        "percentage": 10,
        "amount": None,
        "priority": 5,
        "stackable": False,
        "active": True,
        "starts_at": "2026-12-01T00:00:00Z",
        "ends_at": "2027-01-01T00:00:00Z",
        "days_of_week": [5, 6],
        "hours": {"from": "18:00", "to": "02:00"},
        "categories": ["coffee"],
        "skus": ["MUG-1"],
        "min_purchase": 20,
        "tiers": ["gold"],
        "first_purchase_only": False,
        "max_per_transaction": 15,
        "max_uses_per_member": 3,
        "per": "week",
        "budget": 1000,
        "budget_remaining": 1000,
        "uses": 0,
        "created_at": mock.ANY,
    }
    listed = api.get(rules_path(card)).json()["data"]["rules"]
    assert listed == [rule]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "multiplier"}, "factor"),
        ({"name": "x", "kind": "multiplier", "factor": 1}, "factor"),
        ({"name": "x", "kind": "multiplier", "factor": 11}, "factor"),
        ({"name": "x", "kind": "bonus_percentage", "percentage": 101}, "percentage"),
        ({"name": "x", "kind": "fixed_bonus", "amount": 1, "percentage": 2}, "percentage"),
        ({"name": "x", "kind": "fixed_bonus", "amount": "1.0001"}, "amount"),
        ({**BONUS, "days_of_week": [8]}, "days_of_week"),
        ({**BONUS, "hours": {"from": "9:00"}}, "hours"),
        ({**BONUS, "hours": {"from": "09:00", "to": "09:00"}}, "hours"),
        ({**BONUS, "max_uses_per_member": 2}, "per"),
        ({**BONUS, "per": "week"}, "max_uses_per_member"),
        ({**BONUS, "tiers": ["platinum"]}, "tiers"),
        ({"name": "x", "kind": "bonus_percentage", "percentage": 1,
          "starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}, "ends_at"),
        ({**BONUS, "colour": "red"}, "colour"),
        ({"name": "x", "kind": "boost", "percentage": 1}, "kind"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_a_400_naming_the_field_and_creates_nothing(api, card, body, field):
    response = api.post(rules_path(card), body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"]
    assert not EarningRule.objects.exists()


def test_a_rule_is_changed_and_a_budget_never_below_what_it_gave(api, card, member):
    rule = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(100))
    earn(api, card, member, "100")  # the rule gives 10
    path = f"/api/v1/cashback/rules/{rule.pk}"
    response = api.patch(path, {"budget": "9.999"})
    assert response.status_code == 400
    assert "budget" in response.json()["error"]["details"]
    response = api.patch(path, {"budget": "50", "categories": ["tea"], "hours": None})
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert (data["budget"], data["budget_remaining"], data["uses"]) == (50, 40, 1)
    assert data["categories"] == ["tea"]


def test_delete_deactivates_and_keeps_the_rule(api, card, member):
    rule = RuleFactory.create(card=card)
    earn(api, card, member, "100")
    response = api.delete(f"/api/v1/cashback/rules/{rule.pk}")
    assert response.status_code == 200
    assert response.json()["data"]["active"] is False
    rule.refresh_from_db()
    assert rule.active is False
    # Inactive rules list after the active ones.
    active = RuleFactory.create(card=card)
    ids = [r["id"] for r in api.get(rules_path(card)).json()["data"]["rules"]]
    assert ids == [active.pk, rule.pk]
    # An earn no longer applies it.
    assert [p["source"] for p in earn(api, card, member, "100")["breakdown"]] == ["card", "rule"]


def test_another_apps_card_and_rule_are_not_found(api, other_merchant):
    theirs = CardFactory.create(app=other_merchant.app)
    rule = RuleFactory.create(card=theirs)
    assert api.get(rules_path(theirs)).status_code == 404
    assert api.post(
        rules_path(theirs), {"name": "x", "kind": "fixed_bonus", "amount": 1}
    ).json() == error("not_found")
    assert api.patch(f"/api/v1/cashback/rules/{rule.pk}", {"active": False}).status_code == 404
    assert api.delete(f"/api/v1/cashback/rules/{rule.pk}").status_code == 404
    assert api.delete(f"/api/v1/cashback/rules/{2**63}").status_code == 404
    assert api.get(tiers_path(theirs)).status_code == 404
    rule.refresh_from_db()
    assert rule.active


def test_writing_rules_and_tiers_needs_card_write(make_merchant):
    merchant = make_merchant(scopes=["card_read", "cashback_read"])
    card = CardFactory.create(app=merchant.app)
    api = merchant.client
    assert api.get(rules_path(card)).status_code == 200
    response = api.post(rules_path(card), {"name": "x", "kind": "fixed_bonus", "amount": 1})
    assert response.json() == error("permission_denied")
    assert (
        api.post(
            tiers_path(card), {"name": "g", "threshold": 1, "cashback_percentage": 7}
        ).status_code
        == 403
    )
    rule = RuleFactory.create(card=card)
    assert api.delete(f"/api/v1/cashback/rules/{rule.pk}").status_code == 403
    reader = make_merchant(scopes=["cashback_read"])
    assert reader.client.get(rules_path(CardFactory.create(app=reader.app))).status_code == 403


def test_tiers_are_created_listed_and_thresholds_are_unique(api, card):
    first = api.post(tiers_path(card), {"name": "Silver", "threshold": 0, "cashback_percentage": 6})
    assert first.status_code == 200, first.json()
    gold = api.post(
        tiers_path(card), {"name": "Gold", "threshold": "1000", "cashback_percentage": "7.5"}
    )
    assert gold.json()["data"]["cashback_percentage"] == 7.5
    again = api.post(
        tiers_path(card), {"name": "Gold 2", "threshold": "1000.000", "cashback_percentage": 8}
    )
    assert again.status_code == 400
    assert "threshold" in again.json()["error"]["details"]
    listed = api.get(tiers_path(card)).json()["data"]["tiers"]
    assert [(t["name"], t["threshold"]) for t in listed] == [("Silver", 0), ("Gold", 1000)]
    assert Tier.objects.count() == 2


def test_creating_a_rule_is_idempotent_by_key(api, card):
    body = {"name": "x", "kind": "fixed_bonus", "amount": 1}
    first = api.post(rules_path(card), body, headers={"Idempotency-Key": "rule-1"})
    again = api.post(rules_path(card), body, headers={"Idempotency-Key": "rule-1"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert EarningRule.objects.count() == 1


def test_hours_are_changed_whole(api, card):
    rule = RuleFactory.create(card=card)
    response = api.patch(f"/api/v1/cashback/rules/{rule.pk}", {"hours": {"from": "10:00"}})
    assert response.status_code == 400
    assert "to" in response.json()["error"]["details"]["hours"]
    rule.refresh_from_db()
    assert rule.hours_from is None


def test_a_rule_created_under_a_key_with_dates_and_hours_replays(api, card):
    body = {
        "name": "Evenings in December",
        "kind": "fixed_bonus",
        "amount": "1",
        "starts_at": "2026-12-01T10:00:00+01:00",
        "hours": {"from": "18:00", "to": "02:00"},
    }
    first = api.post(rules_path(card), body, headers={"Idempotency-Key": "rule-dates"})
    assert first.status_code == 200, first.json()
    # The same instant written in another zone is the same request.
    same = {**body, "starts_at": "2026-12-01T09:00:00Z"}
    again = api.post(rules_path(card), same, headers={"Idempotency-Key": "rule-dates"})
    assert again.headers["Idempotent-Replayed"] == "true"
    other = {**body, "starts_at": "2026-12-02T09:00:00Z"}
    reused = api.post(rules_path(card), other, headers={"Idempotency-Key": "rule-dates"})
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert EarningRule.objects.count() == 1

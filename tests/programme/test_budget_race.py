"""A rule's budget under concurrent earns, with real threads on PostgreSQL: never overspent."""

import threading
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps_auth.services import api_key_create
from cashback.ledger_check import ledger_verify
from cashback.models import LedgerEntry
from programme.models import EarningRule
from tests.factories import AppFactory, CardFactory, MemberFactory, RuleFactory
from tests.helpers import concurrently

EARN = "/api/v1/cashback/cashback/earn"

pytestmark = pytest.mark.django_db(transaction=True)


def test_48_concurrent_earns_never_overspend_a_budget(tmp_path):
    app = AppFactory.create()
    key = api_key_create(app=app).raw_key
    card = CardFactory.create(app=app, cashback_min_amount=0, cashback_max_amount=None)
    # Each earn of 100 wants 10 from the rule; the budget holds 4 of them and a half.
    rule = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(45))
    members = [MemberFactory.create(app=app) for _ in range(16)]

    def one(i: int):
        client = APIClient(headers={"X-App-Id": app.app_id, "X-Api-Key": key})
        client.default_format = "json"
        # Three earns per member, concurrently with the member's own and the others'.
        body = {"card_id": card.pk, "member_id": members[i % 16].pk, "purchase_amount": "100"}
        return client.post(EARN, body)

    responses = concurrently(48, one)
    assert [r.status_code for r in responses] == [200] * 48
    from_rule = sorted(
        p["amount"]
        for r in responses
        for p in r.json()["data"]["breakdown"]
        if p["rule_id"] == rule.pk
    )
    # Four got all 10, one the 5 left, the rest nothing from the rule.
    assert from_rule == [5, 10, 10, 10, 10]
    rule = EarningRule.objects.get()
    assert rule.budget_spent == Decimal(45)
    assert rule.budget_remaining == 0
    credited = sum(e.amount for e in LedgerEntry.objects.all())
    assert credited == Decimal(48 * 5 + 45)
    assert ledger_verify().mismatches == []


def test_concurrent_retries_of_one_earn_take_from_the_budget_once():
    app = AppFactory.create()
    key = api_key_create(app=app).raw_key
    card = CardFactory.create(app=app, cashback_min_amount=0, cashback_max_amount=None)
    rule = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(1000))
    member = MemberFactory.create(app=app)
    body = {
        "card_id": card.pk,
        "member_id": member.pk,
        "purchase_amount": "100",
        "reference": "TILL-7-SALE-42",
    }

    def one(i: int):
        client = APIClient(headers={"X-App-Id": app.app_id, "X-Api-Key": key})
        client.default_format = "json"
        return client.post(EARN, body)

    responses = concurrently(12, one)
    assert [r.status_code for r in responses] == [200] * 12
    assert len({r.json()["data"]["transaction_id"] for r in responses}) == 1
    assert LedgerEntry.objects.count() == 1
    rule.refresh_from_db()
    assert rule.budget_spent == Decimal(10)
    assert ledger_verify().mismatches == []


def test_an_earn_whose_budget_was_taken_since_it_read_runs_again_with_the_budget_locked(
    monkeypatch,
):
    import cashback.services.earn as earn_module

    app = AppFactory.create()
    key = api_key_create(app=app).raw_key
    card = CardFactory.create(app=app, cashback_min_amount=0, cashback_max_amount=None)
    rule = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(15))
    members = [MemberFactory.create(app=app) for _ in range(2)]
    # Both earns read 15 left before either saves its 10: the second's take is refused.
    both_read = threading.Barrier(2, timeout=10)
    real_breakdown, real_lock = earn_module.breakdown_for, earn_module.rule_budgets_lock
    reads, locked = [], []

    def breakdown_for(**kwargs):
        answer = real_breakdown(**kwargs)
        reads.append(answer)
        if len(reads) <= 2:
            both_read.wait()
        return answer

    def rule_budgets_lock(**kwargs):
        locked.append(kwargs["rule_ids"])
        return real_lock(**kwargs)

    monkeypatch.setattr(earn_module, "breakdown_for", breakdown_for)
    monkeypatch.setattr(earn_module, "rule_budgets_lock", rule_budgets_lock)

    def one(i: int):
        client = APIClient(headers={"X-App-Id": app.app_id, "X-Api-Key": key})
        client.default_format = "json"
        body = {"card_id": card.pk, "member_id": members[i].pk, "purchase_amount": "100"}
        return client.post(EARN, body)

    responses = concurrently(2, one)
    assert [r.status_code for r in responses] == [200, 200]
    from_rule = sorted(
        p["amount"]
        for r in responses
        for p in r.json()["data"]["breakdown"]
        if p["rule_id"] == rule.pk
    )
    assert from_rule == [5, 10]
    assert locked == [[rule.pk]]  # one earn ran again, with the budget locked
    rule.refresh_from_db()
    assert rule.budget_spent == Decimal(15)
    assert LedgerEntry.objects.count() == 2
    assert ledger_verify().mismatches == []

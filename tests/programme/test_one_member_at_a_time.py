"""A member's earns on a card with a programme run one at a time under the wallet's lock, and
each reads the member's facts as the one before it left them: a first purchase, a use, an
inactivity period are never seen stale."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps_auth.services import api_key_create
from cashback.models import EntryType, LedgerEntry, Wallet, WalletManager
from cashback.services.ledger import locked_wallets
from cashback.services.tiers import member_tier_staff_set
from programme.services import rule_uses
from tests.factories import AppFactory, CardFactory, MemberFactory, RuleFactory, TierFactory
from tests.helpers import concurrently, earn

EARN = "/api/v1/cashback/cashback/earn"


def _slow_breakdowns(monkeypatch):
    """Each earn holds the member's wallet a while after its breakdown: the next one waits."""
    import cashback.services.earn as earn_module

    real = earn_module.breakdown_for

    def slow(**kwargs):
        answer = real(**kwargs)
        time.sleep(0.5)
        return answer

    monkeypatch.setattr(earn_module, "breakdown_for", slow)


def _shop():
    app = AppFactory.create()
    key = api_key_create(app=app).raw_key
    card = CardFactory.create(app=app, cashback_min_amount=0, cashback_max_amount=None)
    member = MemberFactory.create(app=app)

    def post(i: int):
        client = APIClient(headers={"X-App-Id": app.app_id, "X-Api-Key": key})
        client.default_format = "json"
        return client.post(
            EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"}
        )

    return app, card, member, post


def _from(responses, rule) -> list:
    return [
        part["amount"]
        for response in responses
        for part in response.json()["data"]["breakdown"]
        if part["rule_id"] == rule.pk
    ]


@pytest.mark.django_db(transaction=True)
def test_a_first_purchase_bonus_goes_once_to_concurrent_earns(monkeypatch):
    app, card, member, post = _shop()
    Wallet.objects.create(app=app, card=card, member=member)  # a wallet, no earning yet
    rule = RuleFactory.create(
        card=card, kind="fixed_bonus", percentage=None, amount=Decimal(50), first_purchase_only=True
    )
    _slow_breakdowns(monkeypatch)
    responses = concurrently(3, post)
    assert [r.status_code for r in responses] == [200] * 3
    assert _from(responses, rule) == [50]


@pytest.mark.django_db(transaction=True)
def test_a_use_limit_holds_for_concurrent_earns(monkeypatch):
    app, card, member, post = _shop()
    assert post(0).status_code == 200  # the member's wallet
    rule = RuleFactory.create(
        card=card, kind="fixed_bonus", percentage=None, amount=Decimal(20),
        max_uses_per_member=1, per="ever",
    )  # fmt: skip
    _slow_breakdowns(monkeypatch)
    responses = concurrently(3, post)
    assert _from(responses, rule) == [20]
    assert rule_uses([rule]) == {rule.pk: 1}


@pytest.mark.django_db(transaction=True)
def test_concurrent_earns_of_one_member_each_count_their_uses():
    # Each earn waits for the one before it and counts its own uses: none is lost.
    app, card, member, post = _shop()
    rules = [
        RuleFactory.create(card=card),
        RuleFactory.create(card=card, max_uses_per_member=100, per="day"),
    ]
    responses = concurrently(8, post)
    assert [r.status_code for r in responses] == [200] * 8
    assert rule_uses(rules) == {rule.pk: 8 for rule in rules}


def test_an_earn_that_waited_past_the_inactivity_expires_what_was_left_first(
    api, merchant, member, monkeypatch
):
    card = CardFactory.create(app=merchant.app, cashback_inactivity_days=30)
    RuleFactory.create(card=card, percentage=Decimal(10))
    earn(api, card, member, "100")  # 15 spendable
    Wallet.objects.filter(member=member).update(inactive_at=timezone.now() + timedelta(seconds=0.5))
    real = WalletManager.programme_facts

    def waits(self, **kwargs):
        wallet = real(self, **kwargs)
        time.sleep(1)  # as behind a request that held the wallet and changed nothing
        return wallet

    monkeypatch.setattr(WalletManager, "programme_facts", waits)
    data = earn(api, card, member, "100")
    expired = LedgerEntry.objects.get(entry_type=EntryType.EXPIRATION)
    assert expired.amount == Decimal(-15)
    assert data["new_balance"] == 15


@pytest.mark.django_db(transaction=True)
def test_an_earn_that_waited_behind_a_staff_tier_change_earns_at_the_new_tier(monkeypatch):
    import cashback.services.tiers as tiers_module

    app, card, member, post = _shop()
    gold = TierFactory.create(
        card=card, name="Gold", threshold=Decimal(10_000), cashback_percentage=Decimal(10)
    )
    assert post(0).json()["data"]["cashback_earned"] == 5  # the member's wallet; 5 % below Gold
    real = tiers_module.member_tier_set_by_staff

    def slow(**kwargs):
        row = real(**kwargs)
        time.sleep(1)  # the wallet stays locked: the earn below waits for it
        return row

    monkeypatch.setattr(tiers_module, "member_tier_set_by_staff", slow)

    def one(i: int):
        if i == 0:
            return member_tier_staff_set(card=card, member_id=member.pk, tier=gold, note="VIP")
        time.sleep(0.3)  # the staff change holds the wallet by now
        return post(i)

    _, response = concurrently(2, one)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["cashback_earned"] == 10
    assert data["breakdown"][0]["source"] == "tier"


@pytest.mark.django_db(transaction=True)
def test_an_earn_that_waited_behind_a_request_that_changed_nothing_earns_at_the_time_it_ran():
    app, card, member, post = _shop()
    assert post(0).status_code == 200  # the member's wallet
    flash = RuleFactory.create(
        card=card, percentage=Decimal(10), ends_at=timezone.now() + timedelta(seconds=1.5)
    )
    holding = threading.Event()

    def one(i: int):
        if i == 0:  # as a redeem refused for its balance: the wallet locked, nothing changed
            with transaction.atomic():
                locked_wallets().filter(app=app, member=member).first()
                holding.set()
                time.sleep(2.5)
            return None
        holding.wait(5)
        time.sleep(0.2)
        return post(i)

    _, response = concurrently(2, one)
    entry = LedgerEntry.objects.order_by("-id")[0]
    assert flash.ends_at is not None
    assert entry.created_at > flash.ends_at
    assert [p for p in response.json()["data"]["breakdown"] if p["rule_id"] == flash.pk] == []

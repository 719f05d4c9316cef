"""Concurrent requests, with real threads started together by a barrier."""

from collections import Counter
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps_auth.services import api_key_create
from cashback.ledger_check import ledger_verify
from cashback.models import LedgerEntry
from members.models import Member
from members.tokens import member_token_issue
from tests.factories import AppFactory, CardFactory, MemberFactory
from tests.helpers import balance_of, concurrently, give_balance

API = "/api/v1/cashback/cashback"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop():
    app = AppFactory.create()
    key = api_key_create(app=app).raw_key
    card = CardFactory.create(app=app, cashback_min_amount=0, cashback_max_amount=None)
    member = MemberFactory.create(app=app)

    def client():
        c = APIClient(headers={"X-App-Id": app.app_id, "X-Api-Key": key})
        c.default_format = "json"
        return c

    return app, card, member, client


def test_30_concurrent_redeems_of_1_on_a_balance_of_10(shop):
    app, card, member, client = shop
    give_balance(app=app, card=card, member=member, purchase="200")  # 10.000
    token = member_token_issue(app=app, member_id=member.pk).token

    responses = concurrently(
        30,
        lambda i: client().post(
            f"{API}/redeem", {"card_id": card.pk, "amount": 1}, headers={"X-Member-Token": token}
        ),
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 10, 422: 20}
    assert all(
        r.json()["error"]["code"] == "insufficient_balance"
        for r in responses
        if r.status_code == 422
    )
    assert balance_of(member, card) == 0
    assert LedgerEntry.objects.filter(entry_type="redemption").count() == 10
    assert ledger_verify().mismatches == []


def test_40_concurrent_earns_add_up_exactly(shop):
    app, card, member, client = shop
    amounts = [Decimal(10 + i) for i in range(40)]
    responses = concurrently(
        40,
        lambda i: client().post(
            f"{API}/earn",
            {"card_id": card.pk, "member_id": member.pk, "purchase_amount": amounts[i]},
        ),
    )
    assert {r.status_code for r in responses} == {200}
    expected = sum(a * 5 / 100 for a in amounts)
    assert balance_of(member, card) == expected
    new_balances = {Decimal(str(r.json()["data"]["new_balance"])) for r in responses}
    assert len(new_balances) == 40
    assert max(new_balances) == expected
    assert ledger_verify().mismatches == []


def test_concurrent_earns_and_redeems_number_the_wallets_entries_without_gaps(shop):
    """Entries are numbered in their wallet, and per type, one after the other, in the order of
    their time: what history's pages rely on."""
    app, card, member, client = shop
    give_balance(app=app, card=card, member=member, purchase="200")  # 10.000, entry 1
    token = member_token_issue(app=app, member_id=member.pk).token

    def earn_or_redeem(i):
        if i % 2:
            return client().post(
                f"{API}/redeem",
                {"card_id": card.pk, "amount": 1},
                headers={"X-Member-Token": token},
            )
        return client().post(
            f"{API}/earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 20}
        )

    responses = concurrently(24, earn_or_redeem)
    assert {r.status_code for r in responses} == {200}
    entries = list(
        LedgerEntry.objects.filter(wallet__member=member, wallet__card=card).order_by("sequence")
    )
    assert [e.sequence for e in entries] == list(range(1, 26))
    for entry_type in ("earning", "redemption"):
        numbers = [e.type_sequence for e in entries if e.entry_type == entry_type]
        assert numbers == list(range(1, len(numbers) + 1))
    in_time = sorted(entries, key=lambda e: (e.created_at, e.id))
    assert [e.sequence for e in in_time] == list(range(1, 26))
    assert ledger_verify().mismatches == []


def test_10_concurrent_requests_with_one_idempotency_key_make_one_entry(shop):
    app, card, member, client = shop
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 100}
    responses = concurrently(
        10, lambda i: client().post(f"{API}/earn", body, headers={"Idempotency-Key": "same"})
    )
    assert LedgerEntry.objects.count() == 1
    entry = LedgerEntry.objects.get()
    for response in responses:
        assert response.status_code in (200, 409)
        if response.status_code == 200:
            assert response.json()["data"]["transaction_id"] == entry.pk
        else:
            assert response.json()["error"]["code"] == "request_in_progress"
    assert Counter(r.status_code for r in responses)[200] >= 1
    assert balance_of(member, card) == Decimal(5)


def test_8_concurrent_earns_for_one_new_email_make_one_member(shop):
    app, card, member, client = shop
    responses = concurrently(
        8,
        lambda i: client().post(
            f"{API}/earn",
            {"card_id": card.pk, "email": "New.Comer@example.com", "purchase_amount": 20},
        ),
    )
    assert {r.status_code for r in responses} == {200}
    newcomer = Member.objects.get(email="new.comer@example.com")
    assert {r.json()["data"]["member_id"] for r in responses} == {newcomer.pk}
    assert balance_of(newcomer, card) == Decimal(8)
    assert LedgerEntry.objects.filter(wallet__member=newcomer).count() == 8


def test_concurrent_partial_refunds_take_back_exactly_the_earnings_cashback(shop):
    app, card, member, client = shop
    card.cashback_percentage = Decimal(7)
    card.save()
    earning = give_balance(app=app, card=card, member=member, purchase="100")  # 7.000
    give_balance(app=app, card=card, member=member, purchase="1000")  # more balance than needed
    parts = [Decimal("33.333"), Decimal("33.333"), Decimal("33.333"), Decimal("0.001")]

    def refund(amount):
        return client().post(
            f"{API}/refund",
            {
                "card_id": card.pk,
                "member_id": member.pk,
                "refund_amount": amount,
                "original_transaction_id": earning.pk,
            },
        )

    responses = concurrently(4, lambda i: refund(parts[i]))
    assert {r.status_code for r in responses} == {200}
    refunds = LedgerEntry.objects.filter(original_entry=earning)
    assert sum(r.refund_amount or 0 for r in refunds) == Decimal(100)
    assert -sum(r.amount for r in refunds) == earning.amount  # no rounding drift
    assert refund(Decimal("0.001")).json()["error"]["code"] == "refund_exceeds_purchase"
    assert ledger_verify().mismatches == []


def test_concurrent_earns_with_one_reference_make_one_entry(shop):
    app, card, member, client = shop
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 40, "reference": "O-1"}
    responses = concurrently(6, lambda i: client().post(f"{API}/earn", body))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["data"]["transaction_id"] for r in responses}) == 1
    assert LedgerEntry.objects.count() == 1


def test_the_database_refuses_a_negative_balance(shop):
    from django.db import IntegrityError, transaction

    from cashback.models import Wallet

    app, card, member, client = shop
    give_balance(app=app, card=card, member=member, purchase="100")
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(member=member).update(balance=Decimal("-0.001"))

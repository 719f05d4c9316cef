"""Every ledger entry records its webhook event in its own transaction, with the operation's
answer as its data; a refused or replayed operation records none."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from cashback.models import EntryType, LedgerEntry
from cashback.services import cashback_expire_due, cashback_release_due
from cashback.services.adjust import cashback_adjust
from tests.factories import CardFactory
from webhooks.models import WebhookEvent

API = "/api/v1/cashback/cashback"


def events() -> list[dict]:
    return [json.loads(e.body) for e in WebhookEvent.objects.order_by("id")]


@pytest.fixture
def lifecycle_card(merchant):
    return CardFactory.create(
        app=merchant.app, cashback_holding_days=3, cashback_expiry_days=30, cashback_min_amount=0
    )


def test_each_operation_records_one_event_with_its_answer(
    api, merchant, lifecycle_card, member, member_token
):
    card = lifecycle_card
    earned = api.post(
        f"{API}/earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"}
    ).json()["data"]
    released = cashback_release_due(as_of=timezone.now() + timedelta(days=4))
    assert released.released == 1
    redeemed = api.post(
        f"{API}/redeem",
        {"card_id": card.pk, "amount": "2"},
        headers={"X-Member-Token": member_token},
    ).json()["data"]
    reversed_ = api.post(
        f"{API}/reverse", {"card_id": card.pk, "transaction_id": redeemed["transaction_id"]}
    ).json()["data"]
    refunded = api.post(
        f"{API}/refund",
        {"card_id": card.pk, "member_id": member.pk, "refund_amount": "20"},
    ).json()["data"]
    wallet = LedgerEntry.objects.get(pk=earned["transaction_id"]).wallet
    staff = User.objects.create_superuser("staff", password="x")
    cashback_adjust(wallet=wallet, amount=Decimal("1"), reason="goodwill", staff_user=staff)
    expired = cashback_expire_due(as_of=timezone.now() + timedelta(days=60))

    recorded = events()
    assert [e["type"] for e in recorded] == [
        "cashback.earned",
        "cashback.released",
        "cashback.redeemed",
        "cashback.redemption_reversed",
        "cashback.refunded",
        "cashback.adjusted",
        "cashback.expired",
        "cashback.expired",
    ]
    assert expired.expired == 2
    assert [e["data"] for e in recorded[:1] + recorded[2:5]] == [
        earned,
        redeemed,
        reversed_,
        refunded,
    ]
    assert recorded[0]["data"]["status"] == "pending"
    release = LedgerEntry.objects.get(entry_type=EntryType.RELEASE)
    assert recorded[1]["data"] | {"created_at": None} == {
        "transaction_id": release.pk,
        "type": "release",
        "amount": 5,
        "new_balance": 5,
        "pending_balance": 0,
        "currency": "TND",
        "member_id": member.pk,
        "card_id": card.pk,
        "original_transaction_id": earned["transaction_id"],
        "metadata": {},
        "created_at": None,
    }
    assert recorded[5]["data"]["metadata"] == {"reason": "goodwill"}
    assert {e["app_id"] for e in recorded} == {merchant.app.app_id}
    assert len({e["id"] for e in recorded}) == len(recorded)
    assert all(e["id"].startswith("evt_") for e in recorded)
    # Exactly as many events as entries: each entry has its own.
    assert len(recorded) == LedgerEntry.objects.count()


def test_an_expiring_warning_is_an_event_with_the_lot(api, merchant, member):
    card = CardFactory.create(app=merchant.app, cashback_expiry_days=5, cashback_min_amount=0)
    earned = api.post(
        f"{API}/earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"}
    ).json()["data"]
    assert cashback_expire_due().warned == 1
    warning = events()[-1]
    assert warning["type"] == "cashback.expiring"
    assert warning["data"] | {"expires_at": None} == {
        "card_id": card.pk,
        "member_id": member.pk,
        "amount": 5,
        "currency": "TND",
        "expires_at": None,
        "original_transaction_id": earned["transaction_id"],
    }


def test_a_refused_or_replayed_operation_records_no_event(api, card, member, member_token):
    response = api.post(
        f"{API}/redeem",
        {"card_id": card.pk, "amount": "1"},
        headers={"X-Member-Token": member_token},
    )
    assert response.status_code == 422
    assert events() == []
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100", "reference": "A"}
    api.post(f"{API}/earn", body)
    api.post(f"{API}/earn", body)  # a replay by reference
    api.post(f"{API}/earn", body, headers={"Idempotency-Key": "k"})
    api.post(f"{API}/earn", body, headers={"Idempotency-Key": "k"})
    assert [e["type"] for e in events()] == ["cashback.earned"]

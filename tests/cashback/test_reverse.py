"""Reversing a redemption: the amount goes back into the lots it came from, once, within the
window."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cashback.ledger_check import ledger_verify
from cashback.models import EntryType, LedgerEntry, Lot
from tests.factories import CardFactory
from tests.helpers import IsoTimestamp, counts, error, instant

API = "/api/v1/cashback/cashback"


@pytest.fixture
def spent(api, merchant, member, member_token):
    """A card whose cashback expires in 30 days; 5 then 2 earned, 6 redeemed (5 + 1)."""
    card = CardFactory.create(app=merchant.app, cashback_expiry_days=30, cashback_min_amount=0)
    for purchase in ("100", "40"):
        api.post(
            f"{API}/earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": purchase}
        )
    response = api.post(
        f"{API}/redeem",
        {"card_id": card.pk, "amount": "6"},
        headers={"X-Member-Token": member_token},
    )
    return card, response.json()["data"]


def reverse(api, card, transaction_id, **extra):
    return api.post(
        f"{API}/reverse", {"card_id": card.pk, "transaction_id": transaction_id, **extra}
    )


def test_reverse_gives_the_amount_back_into_the_lots_it_came_from(api, spent, member):
    card, redemption = spent
    response = reverse(api, card, redemption["transaction_id"], reason="sale cancelled")
    assert response.status_code == 200
    entry = LedgerEntry.objects.get(entry_type=EntryType.REVERSAL)
    assert response.json() == {
        "success": True,
        "data": {
            "transaction_id": entry.pk,
            "reversed_transaction_id": redemption["transaction_id"],
            "amount": 6,
            "new_balance": 7,
            "currency": "TND",
            "member_id": member.pk,
            "card_id": card.pk,
            "reference": None,
            "reversed_at": IsoTimestamp(),
            "expired_amount": 0,
        },
    }
    assert b'"amount":6.000' in response.content
    assert (entry.event, entry.original_entry_id) == (
        "cashback_redemption_reversed",
        redemption["transaction_id"],
    )
    assert entry.metadata == {"reason": "sale cancelled"}
    assert sorted(Lot.objects.values_list("remaining", flat=True)) == [2, 5]
    assert ledger_verify().mismatches == []


def test_a_second_reversal_is_409_already_reversed(api, spent):
    card, redemption = spent
    first = reverse(api, card, redemption["transaction_id"]).json()["data"]
    before = counts()
    response = reverse(api, card, redemption["transaction_id"])
    assert response.status_code == 409
    assert response.json() == error(
        "already_reversed", details={"reversal_transaction_id": first["transaction_id"]}
    )
    assert counts() == before


def test_reverse_after_the_window_is_422_reversal_window_closed(api, spent, settings):
    card, redemption = spent
    LedgerEntry.objects.filter(pk=redemption["transaction_id"]).update(
        created_at=timezone.now() - timedelta(hours=72, seconds=1)
    )
    response = reverse(api, card, redemption["transaction_id"])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "reversal_window_closed"
    assert response.json()["error"]["details"]["reversal_window_hours"] == 72
    settings.CASHBACK_REVERSAL_WINDOW_HOURS = 100
    assert reverse(api, card, redemption["transaction_id"]).status_code == 200


@pytest.mark.parametrize("what", ["an earning", "another card", "another app", "unknown"])
def test_reverse_of_anything_but_this_cards_redemption_is_404(api, spent, other_merchant, what):
    card, redemption = spent
    redemption_id = redemption["transaction_id"]
    client, card_id, transaction_id = {
        "an earning": (api, card.pk, LedgerEntry.objects.filter(entry_type="earning")[0].pk),
        "another card": (api, CardFactory.create(app=card.app).pk, redemption_id),
        "another app": (
            other_merchant.client,
            CardFactory.create(app=other_merchant.app).pk,
            redemption_id,
        ),
        "unknown": (api, card.pk, 10**9),
    }[what]
    response = client.post(f"{API}/reverse", {"card_id": card_id, "transaction_id": transaction_id})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_reverse_replays_under_its_idempotency_key_and_its_reference(api, spent):
    card, redemption = spent
    headers = {"Idempotency-Key": "rev-1"}
    body = {"card_id": card.pk, "transaction_id": redemption["transaction_id"], "reference": "R1"}
    first = api.post(f"{API}/reverse", body, headers=headers)
    again = api.post(f"{API}/reverse", body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    by_reference = api.post(f"{API}/reverse", body)
    assert by_reference.json()["data"]["transaction_id"] == first.json()["data"]["transaction_id"]
    changed = api.post(f"{API}/reverse", {**body, "reason": "other"}, headers=headers)
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    assert LedgerEntry.objects.filter(entry_type=EntryType.REVERSAL).count() == 1


def test_a_lot_that_expired_meanwhile_expires_again_at_once(api, spent):
    card, redemption = spent
    first_lot = Lot.objects.order_by("available_at")[0]
    Lot.objects.filter(pk=first_lot.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = reverse(api, card, redemption["transaction_id"])
    data = response.json()["data"]
    # 5 went back into the expired lot and was written off at once; 1 into the live one.
    assert (data["amount"], data["expired_amount"], data["new_balance"]) == (6, 5, 2)
    expiration = LedgerEntry.objects.get(entry_type=EntryType.EXPIRATION)
    assert (expiration.amount, expiration.original_entry_id) == (
        Decimal(-5),
        first_lot.source_id,
    )
    balance = api.get(
        f"{API}/balance", {"card_id": card.pk, "member_id": data["member_id"]}
    ).json()["data"]
    assert balance["cashback_balance"] == 2
    assert ledger_verify().mismatches == []


def test_reverse_needs_the_write_scope_and_valid_input(api, spent, make_merchant):
    card, redemption = spent
    reader = make_merchant(scopes=["cashback_read"])
    assert reverse(reader.client, card, redemption["transaction_id"]).status_code == 403
    response = api.post(f"{API}/reverse", {"card_id": card.pk, "transaction_id": "x"})
    assert response.status_code == 400
    assert "transaction_id" in response.json()["error"]["details"]


def test_reversed_at_is_the_entrys_time(api, spent):
    card, redemption = spent
    data = reverse(api, card, redemption["transaction_id"]).json()["data"]
    entry = LedgerEntry.objects.get(pk=data["transaction_id"])
    assert instant(data["reversed_at"]) == entry.created_at


def test_history_filters_reversals_and_names_the_redemption(api, spent, member):
    card, redemption = spent
    reversal = reverse(api, card, redemption["transaction_id"]).json()["data"]
    response = api.get(
        f"{API}/history", {"card_id": card.pk, "member_id": member.pk, "type": "reversal"}
    )
    [item] = response.json()["data"]["transactions"]
    assert (item["id"], item["type"], item["amount"], item["original_transaction_id"]) == (
        reversal["transaction_id"],
        "reversal",
        6,
        redemption["transaction_id"],
    )
    assert item["event"] == "cashback_redemption_reversed"

"""Reversing a redemption: the amount goes back into the lots it came from, once, within the
window."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cashback.ledger_check import ledger_verify
from cashback.models import ClaimSettlement, EntryType, LedgerEntry, Lot
from members.tokens import member_token_issue
from tests.factories import CardFactory, MemberFactory
from tests.helpers import IsoTimestamp, balance_of, counts, error, instant

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
            "recovered_amount": 0,
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


def _refund(api, card, member, **body):
    response = api.post(f"{API}/refund", {"card_id": card.pk, "member_id": member.pk, **body})
    assert response.status_code == 200, response.json()
    return response.json()["data"]


@pytest.mark.parametrize("named", [True, False], ids=["naming_the_earning", "naming_none"])
def test_a_refund_and_a_reversal_leave_the_same_balance_in_either_order(
    api, merchant, make_merchant, named
):
    """Earn 1000 (50), redeem 50, refund the whole purchase, reverse the redemption: the 50 the
    refund could not take back is taken from what the reversal gives back, as when the
    reversal comes first."""
    balances = []
    for order in ("refund_first", "reversal_first"):
        shop = make_merchant()
        card = CardFactory.create(
            app=shop.app, cashback_percentage=Decimal(5), cashback_min_amount=0
        )
        member = MemberFactory.create(app=shop.app)
        token = member_token_issue(app=shop.app, member_id=member.pk).token
        earned = shop.client.post(
            f"{API}/earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "1000"}
        ).json()["data"]
        redemption = shop.client.post(
            f"{API}/redeem", {"card_id": card.pk, "amount": "50"}, headers={"X-Member-Token": token}
        ).json()["data"]
        body = {"refund_amount": "1000"}
        if named:
            body["original_transaction_id"] = earned["transaction_id"]
        if order == "refund_first":
            refund = _refund(shop.client, card, member, **body)
            assert refund["cashback_not_recovered"] == 50
            response = reverse(shop.client, card, redemption["transaction_id"])
            assert response.status_code == 200, response.json()
            reversal = response.json()["data"]
            # Given back in full, and all of it settled what the refund was owed.
            assert (reversal["amount"], reversal["recovered_amount"]) == (50, 50)
            assert reversal["new_balance"] == 0
            entry = LedgerEntry.objects.get(pk=reversal["transaction_id"])
            assert entry.amount == 0
            settlement = ClaimSettlement.objects.get(entry=entry)
            assert (settlement.refund_id, settlement.amount) == (refund["transaction_id"], 50)
        else:
            assert reverse(shop.client, card, redemption["transaction_id"]).status_code == 200
            refund = _refund(shop.client, card, member, **body)
            assert refund["cashback_not_recovered"] == 0
        balances.append(
            shop.client.get(f"{API}/balance", {"card_id": card.pk, "member_id": member.pk}).json()[
                "data"
            ]["cashback_balance"]
        )
    assert balances == [0, 0]
    assert ledger_verify().mismatches == []


def test_a_reversal_settles_a_refund_s_claim_only_once(api, merchant, member, member_token):
    card = CardFactory.create(
        app=merchant.app, cashback_percentage=Decimal(5), cashback_min_amount=0
    )
    earn = {"card_id": card.pk, "member_id": member.pk}
    api.post(f"{API}/earn", {**earn, "purchase_amount": "1000"})  # 50
    first = api.post(
        f"{API}/redeem",
        {"card_id": card.pk, "amount": "30"},
        headers={"X-Member-Token": member_token},
    ).json()["data"]
    second = api.post(
        f"{API}/redeem",
        {"card_id": card.pk, "amount": "20"},
        headers={"X-Member-Token": member_token},
    ).json()["data"]
    refund = _refund(api, card, member, refund_amount="1000")
    assert refund["cashback_not_recovered"] == 50
    one = reverse(api, card, first["transaction_id"]).json()["data"]
    assert (one["recovered_amount"], one["new_balance"]) == (30, 0)
    two = reverse(api, card, second["transaction_id"]).json()["data"]
    assert (two["recovered_amount"], two["new_balance"]) == (20, 0)
    # The claim is settled: an earning after it is the member's in full.
    api.post(f"{API}/earn", {**earn, "purchase_amount": "100"})
    assert balance_of(member, card) == 5
    assert ledger_verify().mismatches == []


def test_a_reversal_leaves_a_refund_s_claim_from_before_the_redemption_alone(
    api, merchant, member, member_token
):
    card = CardFactory.create(
        app=merchant.app, cashback_percentage=Decimal(5), cashback_min_amount=0
    )
    # A refund with nothing to take from: its claim is older than the redemption below.
    _refund(api, card, member, refund_amount="200")
    api.post(f"{API}/earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"})
    redemption = api.post(
        f"{API}/redeem",
        {"card_id": card.pk, "amount": "5"},
        headers={"X-Member-Token": member_token},
    ).json()["data"]
    reversal = reverse(api, card, redemption["transaction_id"]).json()["data"]
    assert (reversal["recovered_amount"], reversal["new_balance"]) == (0, 5)


def test_a_replayed_reversal_answers_what_it_settled(api, merchant, member, member_token):
    card = CardFactory.create(
        app=merchant.app, cashback_percentage=Decimal(5), cashback_min_amount=0
    )
    api.post(f"{API}/earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "1000"})
    redemption = api.post(
        f"{API}/redeem",
        {"card_id": card.pk, "amount": "50"},
        headers={"X-Member-Token": member_token},
    ).json()["data"]
    _refund(api, card, member, refund_amount="1000")
    first = reverse(api, card, redemption["transaction_id"], reference="R-1")
    again = reverse(api, card, redemption["transaction_id"], reference="R-1")
    assert again.json() == first.json()
    assert first.json()["data"]["recovered_amount"] == 50


def test_a_refund_s_claim_is_settled_from_its_earning_s_lot_in_either_order(
    make_merchant, settings
):
    """Earn A (5) then E (10), redeem 15, refund E whole: in either order the cashback left is
    A's, with A's expiry date, as the refund takes E's lot first when the reversal comes
    first."""
    left = []
    for order in ("refund_first", "reversal_first"):
        shop = make_merchant()
        card = CardFactory.create(
            app=shop.app,
            cashback_percentage=Decimal(5),
            cashback_min_amount=0,
            cashback_expiry_days=365,
        )
        member = MemberFactory.create(app=shop.app)
        token = member_token_issue(app=shop.app, member_id=member.pk).token
        earn = {"card_id": card.pk, "member_id": member.pk}
        a = shop.client.post(f"{API}/earn", {**earn, "purchase_amount": "100"}).json()["data"]
        e = shop.client.post(f"{API}/earn", {**earn, "purchase_amount": "200"}).json()["data"]
        redemption = shop.client.post(
            f"{API}/redeem", {"card_id": card.pk, "amount": "15"}, headers={"X-Member-Token": token}
        ).json()["data"]
        refund = {"refund_amount": "200", "original_transaction_id": e["transaction_id"]}
        if order == "refund_first":
            _refund(shop.client, card, member, **refund)
            assert reverse(shop.client, card, redemption["transaction_id"]).status_code == 200
        else:
            assert reverse(shop.client, card, redemption["transaction_id"]).status_code == 200
            _refund(shop.client, card, member, **refund)
        left.append(
            {
                name: Lot.objects.get(source_id=entry["transaction_id"]).remaining
                for name, entry in (("A", a), ("E", e))
            }
        )
    assert left == [{"A": 5, "E": 0}, {"A": 5, "E": 0}]
    assert ledger_verify().mismatches == []

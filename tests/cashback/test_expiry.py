"""Expiry: each credit is a lot spent oldest first; what is left at `expires_at` is written off,
and a warning goes out once per lot before."""

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from cashback.ledger_check import ledger_verify
from cashback.models import EntryType, LedgerEntry, Lot, LotMovement
from cashback.queries import SPEND_HEAD
from cashback.services import cashback_expire_due, cashback_release_due
from cashback.services.adjust import cashback_adjust
from tests.factories import CardFactory
from tests.helpers import balance, earn, instant

API = "/api/v1/cashback/cashback"
DAY = timedelta(days=1)


@pytest.fixture
def expiring_card(merchant):
    return CardFactory.create(app=merchant.app, cashback_expiry_days=30, cashback_min_amount=0)


def redeem(api, card, token, amount):
    response = api.post(
        f"{API}/redeem", {"card_id": card.pk, "amount": amount}, headers={"X-Member-Token": token}
    )
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def expire(as_of):
    out = StringIO()
    call_command("expire_cashback", "--json", "--as-of", as_of.isoformat(), stdout=out)
    return json.loads(out.getvalue())


def test_balance_shows_the_next_expiry(api, expiring_card, member):
    first = earn(api, expiring_card, member, "100")
    earn(api, expiring_card, member, "40")
    next_expiry = balance(api, expiring_card, member)["next_expiry"]
    assert next_expiry["amount"] == 5
    assert instant(next_expiry["expires_at"]) == instant(first["earned_at"]) + 30 * DAY


def test_redemptions_spend_the_oldest_lots_first(api, expiring_card, member, member_token):
    first = earn(api, expiring_card, member, "100")  # 5
    second = earn(api, expiring_card, member, "40")  # 2
    redeem(api, expiring_card, member_token, "6")
    left = dict(Lot.objects.values_list("source_id", "remaining"))
    assert left == {first["transaction_id"]: 0, second["transaction_id"]: 1}
    assert balance(api, expiring_card, member)["next_expiry"]["amount"] == 1


@pytest.mark.parametrize("lots_needed", [1, SPEND_HEAD, SPEND_HEAD + 1, SPEND_HEAD + 4])
def test_a_redemption_needing_more_lots_than_a_spend_reads_first_takes_them_oldest_first(
    api, expiring_card, member, member_token, lots_needed
):
    """A spend reads the `SPEND_HEAD` oldest lots first, and all of them when those fall short:
    either way the oldest are emptied in turn and the next gives the rest."""
    earnings = [earn(api, expiring_card, member, "20")["transaction_id"] for _ in range(24)]
    # Each lot holds 1; the redemption takes all of `lots_needed` - 1 lots and half of the next.
    redeemed = redeem(api, expiring_card, member_token, str(lots_needed - Decimal("0.5")))
    left = dict(Lot.objects.values_list("source_id", "remaining"))
    expected = {
        source: Decimal(0) if i < lots_needed - 1 else Decimal("0.5") if i == lots_needed - 1
        else Decimal(1)
        for i, source in enumerate(earnings)
    }  # fmt: skip
    assert left == expected
    movements = LotMovement.objects.filter(entry_id=redeemed["transaction_id"])
    assert movements.count() == lots_needed
    assert sum(m.amount for m in movements) == -(lots_needed - Decimal("0.5"))
    assert ledger_verify().mismatches == []


def test_what_is_left_of_a_lot_expires_with_an_entry_naming_its_earning(
    api, expiring_card, member, member_token
):
    first = earn(api, expiring_card, member, "100")  # 5, expires first
    redeem(api, expiring_card, member_token, "3")
    earn(api, expiring_card, member, "40")  # 2, a moment later
    first_expiry = instant(first["earned_at"]) + 30 * DAY
    # Both lots are within the warning days first: each is announced once.
    assert expire(first_expiry - timedelta(seconds=1)) == {"expired": 0, "amount": 0, "warned": 2}
    assert expire(first_expiry) == {"expired": 1, "amount": 2, "warned": 0}
    expiration = LedgerEntry.objects.get(entry_type=EntryType.EXPIRATION)
    assert (expiration.amount, expiration.event) == (Decimal(-2), "cashback_expired")
    assert expiration.original_entry_id == first["transaction_id"]
    assert balance(api, expiring_card, member)["cashback_balance"] == 2
    assert expire(first_expiry)["expired"] == 0  # once
    assert ledger_verify().mismatches == []


def test_a_card_without_expiry_never_expires(api, card, member):
    card.cashback_min_amount = 0
    card.save()
    earn(api, card, member, "100")
    assert balance(api, card, member)["next_expiry"] is None
    assert cashback_expire_due(as_of=timezone.now() + 10_000 * DAY).expired == 0


def test_a_held_earning_expires_counting_from_its_release(api, merchant, member):
    card = CardFactory.create(
        app=merchant.app, cashback_holding_days=10, cashback_expiry_days=30, cashback_min_amount=0
    )
    data = earn(api, card, member, "100")
    available_at = instant(data["available_at"])
    cashback_release_due(as_of=available_at)
    assert cashback_expire_due(as_of=available_at + 29 * DAY).expired == 0
    assert cashback_expire_due(as_of=available_at + 30 * DAY).expired == 1
    assert ledger_verify().mismatches == []


def test_expiring_warning_goes_once_per_lot_within_the_warning_days(
    api, expiring_card, member, settings
):
    settings.CASHBACK_EXPIRY_WARNING_DAYS = 7
    data = earn(api, expiring_card, member, "100")
    expires_at = instant(data["earned_at"]) + 30 * DAY
    assert cashback_expire_due(as_of=expires_at - 8 * DAY).warned == 0
    assert cashback_expire_due(as_of=expires_at - 7 * DAY).warned == 1
    assert cashback_expire_due(as_of=expires_at - 2 * DAY).warned == 0
    assert Lot.objects.get().warned_at is not None


def test_a_negative_adjustment_spends_the_oldest_lots(merchant, expiring_card, member, api):
    staff = User.objects.create_superuser("staff", password="x")
    first = earn(api, expiring_card, member, "100")
    wallet = LedgerEntry.objects.get(pk=first["transaction_id"]).wallet
    earn(api, expiring_card, member, "40")
    cashback_adjust(
        wallet=wallet, amount=Decimal("-4"), reason="goodwill reversed", staff_user=staff
    )
    movement = LotMovement.objects.get()
    assert (movement.lot.source_id, movement.amount) == (first["transaction_id"], Decimal(-4))
    assert ledger_verify().mismatches == []

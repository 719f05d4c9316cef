"""Balance and every operation read the clock, not the worker: cashback past its expiry counts
for nothing and cannot be spent the instant it expires, and held cashback is spendable the
instant it is due, whether or not the worker has come by. An operation that finds its wallet
behind the clock writes the release and expiration entries first, in its own transaction."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cashback.ledger_check import ledger_verify
from cashback.models import EntryType, LedgerEntry, Lot
from tests.factories import CardFactory
from tests.helpers import balance, counts, earn, error, instant

API = "/api/v1/cashback/cashback"


@pytest.fixture
def expiring_card(merchant):
    return CardFactory.create(app=merchant.app, cashback_expiry_days=30, cashback_min_amount=0)


@pytest.fixture
def held_card(merchant):
    return CardFactory.create(app=merchant.app, cashback_holding_days=7, cashback_min_amount=0)


def redeem(api, card, token, amount):
    return api.post(
        f"{API}/redeem", {"card_id": card.pk, "amount": amount}, headers={"X-Member-Token": token}
    )


def lot_of(transaction_id: int) -> Lot:
    return Lot.objects.get(source_id=transaction_id)


def test_a_lot_past_its_expiry_counts_for_nothing_the_instant_it_expires(
    api, expiring_card, member
):
    old = earn(api, expiring_card, member, "100")  # 5
    new = earn(api, expiring_card, member, "40")  # 2
    Lot.objects.filter(source_id=old["transaction_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    shown = balance(api, expiring_card, member)
    assert shown["cashback_balance"] == 2
    # The soonest to expire is the lot still spendable, not the one gone.
    assert shown["next_expiry"]["amount"] == 2
    expires_at = lot_of(new["transaction_id"]).expires_at
    assert expires_at is not None
    assert instant(shown["next_expiry"]["expires_at"]) == expires_at
    # A read writes nothing.
    assert not LedgerEntry.objects.filter(entry_type=EntryType.EXPIRATION).exists()


def test_a_redeem_of_cashback_past_its_expiry_is_refused_at_once_and_changes_nothing(
    api, expiring_card, member, member_token
):
    old = earn(api, expiring_card, member, "100")  # 5
    earn(api, expiring_card, member, "40")  # 2
    Lot.objects.filter(source_id=old["transaction_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    before = counts()
    response = redeem(api, expiring_card, member_token, "3")
    assert response.status_code == 422
    assert response.json() == error("insufficient_balance", details={"balance": 2, "amount": 3})
    # Refused, and nothing of the refusal kept: the write-off is the worker's to make (or the
    # next operation's that succeeds).
    assert counts() == before
    assert ledger_verify().mismatches == []


def test_a_redeem_after_an_expiry_writes_the_expiration_off_first_and_spends_the_rest(
    api, expiring_card, member, member_token
):
    old = earn(api, expiring_card, member, "100")  # 5
    new = earn(api, expiring_card, member, "40")  # 2
    Lot.objects.filter(source_id=old["transaction_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = redeem(api, expiring_card, member_token, "1.5")
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["new_balance"] == Decimal("0.5")
    expiration, redemption = LedgerEntry.objects.filter(
        entry_type__in=[EntryType.EXPIRATION, EntryType.REDEMPTION]
    ).order_by("sequence")
    assert (expiration.entry_type, expiration.amount, expiration.original_entry_id) == (
        EntryType.EXPIRATION,
        -5,
        old["transaction_id"],
    )
    assert redemption.sequence == expiration.sequence + 1
    assert (lot_of(old["transaction_id"]).remaining, lot_of(new["transaction_id"]).remaining) == (
        0,
        Decimal("0.5"),
    )
    # The worker finds nothing left to write off.
    assert ledger_verify().mismatches == []
    assert LedgerEntry.objects.filter(entry_type=EntryType.EXPIRATION).count() == 1


def test_an_earn_answers_the_balance_without_what_expired(api, expiring_card, member):
    old = earn(api, expiring_card, member, "100")  # 5
    Lot.objects.filter(source_id=old["transaction_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert earn(api, expiring_card, member, "40")["new_balance"] == 2
    assert ledger_verify().mismatches == []


def test_a_refund_takes_nothing_from_cashback_past_its_expiry(api, expiring_card, member):
    old = earn(api, expiring_card, member, "100")  # 5
    Lot.objects.filter(source_id=old["transaction_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = api.post(
        f"{API}/refund",
        {"card_id": expiring_card.pk, "member_id": member.pk, "refund_amount": "100"},
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    # Expired before the refund came: written off, not taken back by it.
    assert (data["cashback_deducted"], data["cashback_not_recovered"]) == (0, 5)
    assert data["previous_balance"] == 0
    assert ledger_verify().mismatches == []


def test_held_cashback_is_spendable_the_instant_it_is_due(api, held_card, member, member_token):
    earning = earn(api, held_card, member, "100")  # 5, held 7 days
    assert redeem(api, held_card, member_token, "1").status_code == 422
    Lot.objects.filter(source_id=earning["transaction_id"]).update(
        available_at=timezone.now() - timedelta(seconds=1)
    )
    shown = balance(api, held_card, member)
    assert (shown["cashback_balance"], shown["pending_balance"]) == (5, 0)
    assert not LedgerEntry.objects.filter(entry_type=EntryType.RELEASE).exists()

    response = redeem(api, held_card, member_token, "5")
    assert response.status_code == 200, response.json()
    release = LedgerEntry.objects.get(entry_type=EntryType.RELEASE)
    assert (release.amount, release.original_entry_id) == (5, earning["transaction_id"])
    assert response.json()["data"]["new_balance"] == 0
    assert ledger_verify().mismatches == []


def test_held_cashback_due_and_past_its_expiry_too_counts_for_nothing(api, merchant, member):
    card = CardFactory.create(
        app=merchant.app, cashback_holding_days=7, cashback_expiry_days=1, cashback_min_amount=0
    )
    earning = earn(api, card, member, "100")
    past = timezone.now() - timedelta(seconds=1)
    Lot.objects.filter(source_id=earning["transaction_id"]).update(
        available_at=past - timedelta(days=1), expires_at=past
    )
    shown = balance(api, card, member)
    assert (shown["cashback_balance"], shown["pending_balance"], shown["next_expiry"]) == (
        0,
        0,
        None,
    )

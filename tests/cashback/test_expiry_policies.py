"""Expiry policies on the ledger: each lot is dated by its card's policy when it is opened, a
member's inactivity on a card ends all their spendable cashback on it (at read time, for an
operation, and by the worker's sweep alike), and balance tells the soonest instants cashback
expires at."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from cards.models import ExpiryPolicy
from cashback.ledger_check import ledger_verify
from cashback.models import EntryType, LedgerEntry, Lot, Wallet
from cashback.services import cashback_expire_due, cashback_release_due
from cashback.services.adjust import cashback_adjust
from members.tokens import member_token_issue
from tests.factories import CardFactory, RuleFactory
from tests.helpers import balance, earn, instant

API = "/api/v1/cashback/cashback"
DAY = timedelta(days=1)


class Clock:
    """`timezone.now`, moved forward by `offset` (real time keeps running beneath it)."""

    def __init__(self, now):
        self.now, self.offset = now, timedelta(0)

    def __call__(self):
        return self.now() + self.offset


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(timezone.now)
    monkeypatch.setattr(timezone, "now", clock)
    return clock


def make_card(merchant, **config):
    return CardFactory.create(app=merchant.app, cashback_min_amount=0, **config)


def redeem(api, card, member, amount):
    # Issued on the real clock, which the token's verification reads.
    now, timezone.now = timezone.now, getattr(timezone.now, "now", timezone.now)
    try:
        token = member_token_issue(app=card.app, member_id=member.pk).token
    finally:
        timezone.now = now
    return api.post(
        f"{API}/redeem", {"card_id": card.pk, "amount": amount}, headers={"X-Member-Token": token}
    )


def lot_of(data: dict) -> Lot:
    return Lot.objects.get(source_id=data["transaction_id"])


def inactive_at(card, member) -> datetime:
    found = Wallet.objects.get(card=card, member=member).inactive_at
    assert found is not None
    return found


def expirations() -> list[tuple[int | None, Decimal]]:
    """The expiration entries, oldest first: (the lot's source, amount)."""
    entries = LedgerEntry.objects.filter(entry_type=EntryType.EXPIRATION).order_by("id")
    return [(e.original_entry_id, e.amount) for e in entries]


def upcoming(data: list[dict]) -> list[tuple[Decimal, datetime]]:
    return [(Decimal(str(i["amount"])), instant(i["expires_at"])) for i in data]


# Lots dated by the policy


@pytest.mark.parametrize(
    "config",
    [
        {"cashback_expiry_days": 30},
        {"cashback_expiry_days": 30, "cashback_expiry_policy": ExpiryPolicy.END_OF_MONTH},
        {"cashback_expiry_policy": ExpiryPolicy.FIXED_DATE, "cashback_expiry_date": "01-15"},
        {
            "cashback_holding_days": 7,
            "cashback_expiry_days": 3,
            "cashback_expiry_policy": "end_of_month",
        },
    ],
)
def test_an_earnings_lot_is_dated_by_its_cards_policy_from_when_it_is_spendable(
    api, merchant, member, config
):
    card = make_card(merchant, time_zone="Europe/Paris", **config)
    data = earn(api, card, member, "100")
    lot = lot_of(data)
    earned_at = LedgerEntry.objects.get(pk=data["transaction_id"]).created_at
    assert lot.available_at == earned_at + card.cashback_holding_days * DAY
    assert lot.expires_at == card.lot_expires_at(lot.available_at)
    if card.cashback_expiry_policy != ExpiryPolicy.ROLLING:
        # The first instant of a day in Paris: 22:00 or 23:00 UTC.
        assert (lot.expires_at.hour, lot.expires_at.minute) in {(22, 0), (23, 0)}
    # The answer and the stored lot agree.
    assert instant(data["available_at"]) == lot.available_at
    assert ledger_verify().mismatches == []


def test_a_positive_adjustment_is_a_lot_dated_by_the_policy(merchant, member):
    card = make_card(
        merchant, cashback_expiry_policy=ExpiryPolicy.FIXED_DATE, cashback_expiry_date="12-31"
    )
    wallet = Wallet.objects.create(app=merchant.app, card=card, member=member)
    staff = User.objects.create_superuser("staff", password="x")
    posted = cashback_adjust(wallet=wallet, amount=Decimal(3), reason="goodwill", staff_user=staff)
    entry = posted.entry
    assert entry is not None
    lot = Lot.objects.get(source_id=entry.pk)
    assert lot.expires_at == card.lot_expires_at(entry.created_at)
    assert lot.expires_at is not None


def test_existing_lots_keep_their_dates_when_the_policy_changes(api, merchant, member):
    card = make_card(merchant, cashback_expiry_days=30)
    first = earn(api, card, member, "100")
    rolling = lot_of(first).expires_at
    card.cashback_expiry_policy = ExpiryPolicy.END_OF_MONTH
    card.save()
    second = earn(api, card, member, "40")
    assert lot_of(first).expires_at == rolling
    assert lot_of(second).expires_at == card.lot_expires_at(lot_of(second).available_at)
    assert lot_of(second).expires_at != lot_of(second).available_at + 30 * DAY


# Balance: upcoming_expiries


def test_lots_expiring_at_one_instant_are_one_upcoming_expiry(api, merchant, member):
    card = make_card(
        merchant, cashback_expiry_policy=ExpiryPolicy.FIXED_DATE, cashback_expiry_date="12-31"
    )
    first = earn(api, card, member, "100")  # 5
    earn(api, card, member, "40")  # 2
    assert redeem(api, card, member, "1").status_code == 200  # from the oldest lot
    shown = balance(api, card, member)
    expires_at = lot_of(first).expires_at
    assert upcoming(shown["upcoming_expiries"]) == [(Decimal(6), expires_at)]
    assert upcoming([shown["next_expiry"]]) == [(Decimal(6), expires_at)]


def test_upcoming_expiries_are_the_ten_soonest_instants_oldest_first(api, merchant, member, clock):
    card = make_card(merchant, cashback_expiry_days=30)
    lots = []
    for day in range(12):
        clock.offset = day * DAY
        lots.append(lot_of(earn(api, card, member, str(20 + day))))  # 1, 1.05, 1.10, ...
    assert redeem(api, card, member, "0.5").status_code == 200  # half of the oldest
    clock.offset = 12 * DAY
    shown = balance(api, card, member)
    expected = [
        (Decimal("0.5") if i == 0 else Decimal(20 + i) / 20, lot.expires_at)
        for i, lot in enumerate(lots[:10])
    ]
    assert upcoming(shown["upcoming_expiries"]) == expected
    assert upcoming([shown["next_expiry"]]) == expected[:1]
    # The soonest lot past its expiry is gone from the list, at read time.
    clock.offset = 30 * DAY + timedelta(hours=1)
    shown = balance(api, card, member)
    assert [at for _, at in upcoming(shown["upcoming_expiries"])] == [
        lot.expires_at for lot in lots[1:11]
    ]


def test_held_cashback_is_not_among_the_upcoming_expiries_until_it_is_due(
    api, merchant, member, clock
):
    card = make_card(merchant, cashback_holding_days=7, cashback_expiry_days=30)
    data = earn(api, card, member, "100")
    assert balance(api, card, member)["upcoming_expiries"] == []
    clock.offset = 7 * DAY + timedelta(seconds=1)  # due, not yet released by the worker
    shown = balance(api, card, member)
    assert upcoming(shown["upcoming_expiries"]) == [(Decimal(5), lot_of(data).expires_at)]


# Inactivity


def test_an_earning_sets_the_wallets_inactivity_date(api, merchant, member):
    card = make_card(merchant, cashback_inactivity_days=30)
    first = earn(api, card, member, "100")  # the wallet's first entry creates it
    earned_at = instant(first["earned_at"])
    assert timedelta(0) <= earned_at + 30 * DAY - inactive_at(card, member) < timedelta(seconds=1)
    second = earn(api, card, member, "100")  # a move of the wallet
    earned_at = instant(second["earned_at"])
    assert timedelta(0) <= earned_at + 30 * DAY - inactive_at(card, member) < timedelta(seconds=1)
    other = make_card(merchant)
    earn(api, other, member, "100")
    assert Wallet.objects.get(card=other, member=member).inactive_at is None


def test_an_earning_on_a_card_with_rules_sets_the_wallets_inactivity_date(api, merchant, member):
    card = make_card(merchant, cashback_inactivity_days=30)
    RuleFactory.create(card=card, percentage=Decimal(10))
    earn(api, card, member, "100")  # the wallet's first entry creates it
    second = earn(api, card, member, "100")  # the entry's statement moves the wallet
    earned_at = instant(second["earned_at"])
    assert timedelta(0) <= earned_at + 30 * DAY - inactive_at(card, member) < timedelta(seconds=1)


def test_inactivity_expires_all_spendable_cashback_at_read_time_and_for_a_redeem(
    api, merchant, member, clock
):
    card = make_card(merchant, cashback_inactivity_days=30)
    earn(api, card, member, "100")  # 5, never expires by itself
    inactive = inactive_at(card, member)
    clock.offset = 30 * DAY - timedelta(minutes=1)
    shown = balance(api, card, member)
    assert shown["cashback_balance"] == 5
    assert upcoming(shown["upcoming_expiries"]) == [(Decimal(5), inactive)]

    clock.offset = 30 * DAY + timedelta(seconds=1)
    shown = balance(api, card, member)
    assert (shown["cashback_balance"], shown["next_expiry"], shown["upcoming_expiries"]) == (
        0,
        None,
        [],
    )
    assert not LedgerEntry.objects.filter(entry_type=EntryType.EXPIRATION).exists()
    response = redeem(api, card, member, "1")
    assert response.status_code == 422, response.json()
    assert response.json()["error"]["code"] == "insufficient_balance"


def test_a_later_earning_pushes_the_inactivity_back(api, merchant, member, clock):
    card = make_card(merchant, cashback_inactivity_days=30)
    earn(api, card, member, "100")  # 5
    clock.offset = 20 * DAY
    earn(api, card, member, "40")  # 2
    clock.offset = 45 * DAY
    assert balance(api, card, member)["cashback_balance"] == 7
    assert cashback_expire_due(as_of=timezone.now()).expired == 0
    clock.offset = 50 * DAY + timedelta(seconds=1)
    assert balance(api, card, member)["cashback_balance"] == 0


def test_the_worker_writes_off_an_inactive_wallets_lots_as_a_read_counted_them(
    api, merchant, member, clock
):
    card = make_card(merchant, cashback_inactivity_days=30, cashback_expiry_days=40)
    first = earn(api, card, member, "100")  # 5, expires on day 40
    clock.offset = 15 * DAY
    second = earn(api, card, member, "40")  # 2, expires on day 55; inactive from day 45
    inactive = inactive_at(card, member)
    assert upcoming(balance(api, card, member)["upcoming_expiries"]) == [
        (Decimal(5), lot_of(first).expires_at),
        (Decimal(2), inactive),
    ]
    clock.offset = 41 * DAY
    assert cashback_expire_due(as_of=timezone.now()).expired == 1  # the first lot's own expiry
    clock.offset = 45 * DAY + timedelta(seconds=1)
    assert balance(api, card, member)["cashback_balance"] == 0

    swept = cashback_expire_due(as_of=timezone.now())
    assert (swept.expired, swept.amount) == (1, Decimal(2))
    assert expirations() == [
        (first["transaction_id"], Decimal(-5)),
        (second["transaction_id"], Decimal(-2)),
    ]
    wallet = Wallet.objects.get(card=card, member=member)
    assert (wallet.balance, wallet.inactive_at) == (0, None)
    assert lot_of(second).expires_at == inactive
    assert balance(api, card, member)["cashback_balance"] == 0
    assert cashback_expire_due(as_of=timezone.now()).expired == 0  # once
    assert ledger_verify().mismatches == []


def test_an_earning_after_the_inactivity_writes_the_old_cashback_off_first(
    api, merchant, member, clock
):
    card = make_card(merchant, cashback_inactivity_days=30)
    first = earn(api, card, member, "100")  # 5
    clock.offset = 31 * DAY
    second = earn(api, card, member, "40")  # 2
    assert second["new_balance"] == 2
    assert expirations() == [(first["transaction_id"], Decimal(-5))]
    assert inactive_at(card, member) > timezone.now() + 29 * DAY
    assert balance(api, card, member)["cashback_balance"] == 2
    assert ledger_verify().mismatches == []


def test_held_cashback_does_not_expire_by_inactivity_until_it_is_released(
    api, merchant, member, clock
):
    card = make_card(merchant, cashback_holding_days=10, cashback_inactivity_days=5)
    data = earn(api, card, member, "100")  # 5, held until day 10; inactive from day 5
    clock.offset = 6 * DAY
    shown = balance(api, card, member)
    assert (shown["cashback_balance"], shown["pending_balance"]) == (0, 5)
    assert cashback_expire_due(as_of=timezone.now()).expired == 0
    assert Lot.objects.get().pending == 5  # still held

    # Released into a wallet still inactive: spendable, so gone at once.
    clock.offset = 10 * DAY + timedelta(seconds=1)
    shown = balance(api, card, member)
    assert (shown["cashback_balance"], shown["pending_balance"]) == (0, 0)
    as_of = timezone.now()
    assert cashback_release_due(as_of=as_of).released == 1
    assert cashback_expire_due(as_of=as_of).expired == 1
    assert expirations() == [(data["transaction_id"], Decimal(-5))]
    assert balance(api, card, member)["cashback_balance"] == 0
    assert ledger_verify().mismatches == []


def test_what_staff_credit_after_an_inactivity_is_kept_until_the_next_one(
    api, merchant, member, clock
):
    card = make_card(merchant, cashback_inactivity_days=30)
    earn(api, card, member, "100")
    clock.offset = 31 * DAY
    wallet = Wallet.objects.get(card=card, member=member)
    staff = User.objects.create_superuser("staff", password="x")
    posted = cashback_adjust(
        wallet=wallet, amount=Decimal(3), reason="welcome back", staff_user=staff
    )
    assert posted.entry is not None
    assert posted.entry.balance_after == 3  # the 5 expired first
    clock.offset = 60 * DAY
    assert balance(api, card, member)["cashback_balance"] == 3
    assert cashback_expire_due(as_of=timezone.now()).expired == 0
    assert ledger_verify().mismatches == []


def test_a_reversal_after_the_inactivity_puts_the_cashback_back_expired(
    api, merchant, member, clock
):
    card = make_card(merchant, cashback_inactivity_days=30)
    earn(api, card, member, "100")  # 5
    clock.offset = 30 * DAY - timedelta(hours=1)
    redeemed = redeem(api, card, member, "5")  # the lot is empty when the inactivity comes
    assert redeemed.status_code == 200, redeemed.json()
    clock.offset = 30 * DAY + timedelta(seconds=1)
    assert cashback_expire_due(as_of=timezone.now()).expired == 0  # nothing left to write off
    response = api.post(
        f"{API}/reverse",
        {"card_id": card.pk, "transaction_id": redeemed.json()["data"]["transaction_id"]},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["new_balance"] == 0
    assert balance(api, card, member)["cashback_balance"] == 0
    assert ledger_verify().mismatches == []

"""The lifecycle's operations racing each other on PostgreSQL, in real threads: released together
by a barrier, each round on fresh wallets, a few rounds each to give interleavings a chance; or
queued behind a held wallet lock in the order a test forces, so that each order is proven."""

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from cashback.errors import AlreadyReversed, InsufficientBalance
from cashback.ledger_check import ledger_verify
from cashback.models import EntryType, LedgerEntry, Lot, Wallet
from cashback.services import (
    Posted,
    cashback_expire_due,
    cashback_redeem,
    cashback_refund,
    cashback_release_due,
    cashback_reverse,
)
from core.errors import DomainError
from members.services import MemberRef
from tests.factories import AppFactory, CardFactory, MemberFactory
from tests.helpers import concurrently, give_balance
from webhooks.models import EventType, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 5
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Refused:
    """A service call's business error, as `concurrently` takes a raised error for a failure."""

    error: DomainError


def outcome(call):
    """What a service call gave: its result, or the business error it raised."""
    try:
        return call()
    except DomainError as exc:
        return Refused(exc)


@pytest.fixture
def app():
    return AppFactory.create()


def new_card(app, **days):
    return CardFactory.create(app=app, cashback_min_amount=0, cashback_max_amount=None, **days)


def test_two_reversals_of_one_redemption_at_once_make_one_reversal(app):
    card = new_card(app, cashback_expiry_days=30)
    for _ in range(ROUNDS):
        member = MemberFactory.create(app=app)
        give_balance(app=app, card=card, member=member, purchase="200")  # 10
        redemption = cashback_redeem(
            app=app, card=card, member_id=member.pk, amount=Decimal(7)
        ).entry

        reverse = partial(cashback_reverse, app=app, card=card, transaction_id=redemption.pk)

        results = concurrently(2, lambda i, reverse=reverse: outcome(reverse))

        posted = [r for r in results if isinstance(r, Posted)]
        refused = [r.error for r in results if isinstance(r, Refused)]
        assert (len(posted), len(refused)) == (1, 1), results
        assert isinstance(refused[0], AlreadyReversed)
        reversals = LedgerEntry.objects.filter(
            entry_type=EntryType.REVERSAL, original_entry=redemption
        )
        assert [r.pk for r in reversals] == [posted[0].entry.pk]
        assert refused[0].details == {"reversal_transaction_id": posted[0].entry.pk}
        assert Wallet.objects.get(member=member, card=card).balance == 10
    assert ledger_verify().mismatches == []


def waiting_for_locks() -> int:
    """How many of this database's sessions wait for a lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def in_order(wallet: Wallet, calls: list) -> list:
    """Runs `calls` so that each takes the wallet's lock in the order given: the wallet's row is
    held by another session while each call, started one after the other, comes to wait for it
    (PostgreSQL grants a row's lock to its waiters in the order they came), then let go."""
    results: list = [None] * len(calls)
    threads: list[threading.Thread] = []
    try:
        with psycopg.connect(**connection.get_connection_params()) as holder:
            holder.execute("SELECT 1 FROM cashback_wallet WHERE id = %s FOR UPDATE", [wallet.pk])
            for i, call in enumerate(calls):

                def work(i=i, call=call):
                    try:
                        results[i] = outcome(call)
                    finally:
                        connections.close_all()

                thread = threading.Thread(target=work)
                thread.start()
                threads.append(thread)
                deadline = time.monotonic() + 10
                while waiting_for_locks() < i + 1:
                    assert time.monotonic() < deadline, f"call {i} never waited for the wallet"
                    time.sleep(0.01)
            holder.rollback()
    finally:
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a call never finished"
    return results


@pytest.mark.parametrize("first", ["reversal", "redemption"])
def test_a_reversal_and_a_redemption_at_once_on_one_wallet_agree(app, first):
    """7 redeemed out of 10, leaving 3; then at once the 7 given back and 6 redeemed: the
    redemption passes only if the reversal went first, and the balance says which. Each order
    is forced (`in_order`)."""
    card = new_card(app, cashback_expiry_days=30)
    member = MemberFactory.create(app=app)
    give_balance(app=app, card=card, member=member, purchase="100")  # 5, the oldest lot
    give_balance(app=app, card=card, member=member, purchase="100")  # 5
    redemption = cashback_redeem(app=app, card=card, member_id=member.pk, amount=Decimal(7)).entry
    calls = {
        "reversal": partial(cashback_reverse, app=app, card=card, transaction_id=redemption.pk),
        "redemption": partial(
            cashback_redeem, app=app, card=card, member_id=member.pk, amount=Decimal(6)
        ),
    }
    wallet = Wallet.objects.get(member=member, card=card)
    order = [first, *(name for name in calls if name != first)]

    results = dict(zip(order, in_order(wallet, [calls[name] for name in order]), strict=True))

    reversal, redeem = results["reversal"], results["redemption"]
    assert isinstance(reversal, Posted), reversal
    wallet.refresh_from_db()
    if first == "reversal":
        assert isinstance(redeem, Posted), redeem
        assert reversal.entry.balance_after == 10
        assert redeem.entry.balance_after == wallet.balance == 4
    else:
        assert isinstance(redeem, Refused), redeem
        assert isinstance(redeem.error, InsufficientBalance)
        assert wallet.balance == reversal.entry.balance_after == 10
    balances = LedgerEntry.objects.filter(wallet=wallet).values_list("balance_after", flat=True)
    assert min(balances) >= 0
    assert sum(Lot.objects.filter(wallet=wallet).values_list("remaining", flat=True)) == (
        wallet.balance
    )
    assert ledger_verify().mismatches == []


def test_a_release_and_a_refund_of_the_same_held_earning_at_once_take_its_cashback_once(app):
    """The held 5 is either released and then 2 refunded from the balance, or 2 refunded from
    what is held and the other 3 released: what the release gave plus what the refund took from
    pending is the earning's cashback, and 3 is left either way."""
    card = new_card(app, cashback_holding_days=14)
    for _ in range(ROUNDS):
        member = MemberFactory.create(app=app)
        earning = give_balance(app=app, card=card, member=member, purchase="100")  # 5 held
        calls = [
            partial(cashback_release_due, as_of=timezone.now() + 15 * DAY),
            partial(
                cashback_refund,
                app=app,
                card=card,
                member_ref=MemberRef(member_id=member.pk),
                refund_amount=Decimal(40),
                original_transaction_id=earning.pk,
            ),
        ]

        _, refund = concurrently(2, lambda i, calls=calls: outcome(calls[i]))

        assert isinstance(refund, Posted), refund
        release = LedgerEntry.objects.get(entry_type=EntryType.RELEASE, original_entry=earning)
        assert -refund.entry.amount - refund.entry.pending_amount == 2
        assert release.amount + -refund.entry.pending_amount == 5
        wallet = Wallet.objects.get(member=member, card=card)
        assert (wallet.balance, wallet.pending_balance) == (3, 0)
        lot = Lot.objects.get(source=earning)
        assert (lot.pending, lot.remaining) == (0, 3)
    assert ledger_verify().mismatches == []


def test_two_workers_releasing_at_once_release_each_earning_once(app):
    card = new_card(app, cashback_holding_days=3)
    for round_ in range(3):
        earnings = [
            give_balance(app=app, card=card, member=MemberFactory.create(app=app), purchase=p)
            for p in ("100", "40") * 15
        ]
        as_of = timezone.now() + (4 + round_) * DAY

        results = concurrently(2, lambda i, as_of=as_of: cashback_release_due(as_of=as_of))

        assert sum(r.released for r in results) == len(earnings)
        assert sum(r.amount for r in results) == sum(e.pending_amount for e in earnings)
        released = Counter(
            LedgerEntry.objects.filter(entry_type=EntryType.RELEASE).values_list(
                "original_entry_id", flat=True
            )
        )
        assert {released[e.pk] for e in earnings} == {1}
    assert not Lot.objects.filter(pending__gt=0).exists()
    assert ledger_verify().mismatches == []


def test_two_workers_expiring_at_once_expire_each_lot_once_and_warn_once(app, settings):
    settings.CASHBACK_EXPIRY_WARNING_DAYS = 7
    expiring = new_card(app, cashback_expiry_days=30)
    warned = new_card(app, cashback_expiry_days=35)
    for round_ in range(3):
        members = [MemberFactory.create(app=app) for _ in range(15)]
        due = [give_balance(app=app, card=expiring, member=m, purchase="100") for m in members]
        later = [give_balance(app=app, card=warned, member=m, purchase="40") for m in members]
        # The lots due expire; those of the other card expire within the warning days.
        as_of = timezone.now() + (31 + round_ * 0.01) * DAY

        results = concurrently(2, lambda i, as_of=as_of: cashback_expire_due(as_of=as_of))

        assert sum(r.expired for r in results) == len(due)
        assert sum(r.amount for r in results) == 5 * len(due)
        assert sum(r.warned for r in results) == len(later)
        expirations = Counter(
            LedgerEntry.objects.filter(entry_type=EntryType.EXPIRATION).values_list(
                "original_entry_id", flat=True
            )
        )
        assert {expirations[e.pk] for e in due} == {1}
        assert not any(expirations[e.pk] for e in later)
        warnings = Counter(
            json.loads(body)["data"]["original_transaction_id"]
            for body in WebhookEvent.objects.filter(event_type=EventType.EXPIRING).values_list(
                "body", flat=True
            )
        )
        assert {warnings[e.pk] for e in later} == {1}
        assert not any(warnings[e.pk] for e in due)
        assert Wallet.objects.filter(card=expiring, balance__gt=0).count() == 0
    assert ledger_verify().mismatches == []

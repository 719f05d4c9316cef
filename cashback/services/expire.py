"""Spendable cashback expires: the unspent rest of each lot past `expires_at` is written off, and
lots about to expire are announced once (`cashback.expiring`)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cashback.events import expiring_event_record
from cashback.models import Lot, Wallet
from cashback.services.ledger import ZERO, app_ids, locked_wallets, wallet_expire_due, wallets_of

BATCH = 500


@dataclass(frozen=True)
class Expired:
    expired: int  # expiration entries written
    amount: Decimal  # their total (positive), whatever the cards' currencies
    warned: int  # lots announced as expiring


def cashback_expire_due(*, as_of: datetime | None = None) -> Expired:
    """Writes off all the spendable cashback of each wallet past its `inactive_at` at `as_of`
    (default now) and every lot expired at `as_of`, app by app, one wallet per transaction
    (`wallet_expire_due`, as an operation settles a wallet), then
    sends the `cashback.expiring` warning of each lot that expires within
    `CASHBACK_EXPIRY_WARNING_DAYS` of `as_of`, once per lot.

    Runs safely beside itself: a wallet's lots are read again under its lock, and a warning is
    claimed with its lot's row (SKIP LOCKED) and marked in the same transaction as its event.
    """
    as_of = as_of or timezone.now()
    expired, amount = 0, ZERO
    for app_id, wallet_id in _inactive_wallets(as_of=as_of):
        count, total = _expire_wallet(app_id=app_id, wallet_id=wallet_id, as_of=as_of)
        expired, amount = expired + count, amount + total
    for app_id, wallet_id in wallets_of(Lot.objects.filter(remaining__gt=0, expires_at__lte=as_of)):
        count, total = _expire_wallet(app_id=app_id, wallet_id=wallet_id, as_of=as_of)
        expired, amount = expired + count, amount + total
    warned = 0
    for app_id in app_ids():
        while count := _warn_batch(app_id=app_id, as_of=as_of):
            warned += count
    return Expired(expired=expired, amount=amount, warned=warned)


def _inactive_wallets(*, as_of: datetime) -> Iterator[tuple[int, int]]:
    """The wallets past their `inactive_at` at `as_of`, as (app, wallet), app by app and a
    batch at a time, asking again after each batch until none is left: expiring a wallet
    clears its `inactive_at`, so that the `wallet_inactive` index holds only wallets with a
    period running, and the range read here only those the sweep has to settle."""
    for app_id in app_ids():
        of_app = Wallet.objects.filter(app_id=app_id, inactive_at__lte=as_of).order_by()
        while wallet_ids := list(of_app.values_list("pk", flat=True)[:BATCH]):
            yield from ((app_id, wallet_id) for wallet_id in wallet_ids)


@transaction.atomic(durable=True)
def _expire_wallet(*, app_id: int, wallet_id: int, as_of: datetime) -> tuple[int, Decimal]:
    wallet = locked_wallets().select_related("card").get(app_id=app_id, pk=wallet_id)
    expired = wallet_expire_due(wallet=wallet, card=wallet.card, as_of=as_of)
    return len(expired), sum((-entry.amount for entry in expired), start=ZERO)


@transaction.atomic(durable=True)
def _warn_batch(*, app_id: int, as_of: datetime) -> int:
    horizon = as_of + timedelta(days=settings.CASHBACK_EXPIRY_WARNING_DAYS)
    lots = list(
        Lot.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("wallet__card")
        .filter(app_id=app_id, wallet__app_id=app_id, wallet__card__app_id=app_id)
        .filter(
            remaining__gt=0, warned_at__isnull=True, expires_at__gt=as_of, expires_at__lte=horizon
        )
        .order_by("expires_at", "id")[:BATCH]
    )
    now = timezone.now()
    for lot in lots:
        expiring_event_record(lot=lot, card=lot.wallet.card, member_id=lot.wallet.member_id)
    Lot.objects.filter(app_id=app_id, pk__in=[lot.pk for lot in lots]).update(warned_at=now)
    return len(lots)

"""The ledger's write primitives, shared by every operation: lock a wallet, post one entry."""

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction

from apps_auth.models import App
from cards.models import Card
from cashback import money
from cashback.models import EVENTS, LedgerEntry, Wallet
from config.api.errors import CardInactive, DuplicateReference, InvalidInput
from members.models import Member


@dataclass(frozen=True)
class Posted:
    """An operation's entry, and whether it was posted before under the same reference."""

    entry: LedgerEntry
    replayed: bool = False


def fingerprint(**fields) -> str:
    """A digest of an operation's inputs; decimals are compared by value, so 50 equals 50.00."""

    def canonical(value):
        if isinstance(value, Decimal):
            return format(value.normalize(), "f") if value else "0"
        raise TypeError(f"Cannot fingerprint {type(value).__name__}")

    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=canonical)
    return hashlib.sha256(text.encode()).hexdigest()


def card_check_active(card: Card) -> None:
    if not card.is_active:
        raise CardInactive()


def amount_check_places(*, field: str, amount: Decimal, currency: str) -> None:
    """Raises `InvalidInput` when the amount has more decimal places than the currency allows."""
    if not money.has_valid_places(amount, currency):
        digits = money.minor_digits(currency)
        raise InvalidInput(
            "The request is invalid.",
            details={field: [f"At most {digits} decimal places for {currency}."]},
        )


def entry_replay(*, card: Card, entry_type: str, reference: str | None, request_fingerprint: str):
    """The entry posted before under this reference when the request is the same, else None.

    Raises `DuplicateReference` when the reference was used by another request.
    """
    if reference is None:
        return None
    entry = (
        LedgerEntry.objects.select_related("wallet")
        .filter(card=card, entry_type=entry_type, reference=reference)
        .first()
    )
    if entry is None:
        return None
    if entry.request_fingerprint != request_fingerprint:
        raise DuplicateReference()
    return entry


def wallet_lock(*, app: App, member: Member, card: Card) -> Wallet:
    """The member's wallet on the card, created empty if need be.

    Locked until the transaction ends.
    """
    wallet = Wallet.objects.select_for_update().filter(member=member, card=card).first()
    if wallet is not None:
        return wallet
    try:
        with transaction.atomic():
            Wallet.objects.create(app=app, member=member, card=card)
    except IntegrityError:
        pass  # created by a concurrent request: lock theirs
    return Wallet.objects.select_for_update().get(member=member, card=card)


def entry_post(
    *, wallet: Wallet, entry_type: str, amount: Decimal, request_fingerprint: str, **fields
) -> Posted:
    """Appends one entry to a locked wallet and moves its balance by `amount`, in one transaction.

    A concurrent request that posted the same reference first wins: this one replays it, or raises
    `DuplicateReference` when its request differs.
    """
    balance_after = wallet.balance + amount
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                app_id=wallet.app_id,
                wallet=wallet,
                card_id=wallet.card_id,
                entry_type=entry_type,
                event=EVENTS[entry_type],
                amount=amount,
                balance_after=balance_after,
                request_fingerprint=request_fingerprint,
                **fields,
            )
    except IntegrityError:
        replay = entry_replay(
            card=wallet.card,
            entry_type=entry_type,
            reference=fields.get("reference"),
            request_fingerprint=request_fingerprint,
        )
        if replay is None:
            raise
        return Posted(entry=replay, replayed=True)
    # The row is locked, so the balance computed in Decimal is exact; SQL arithmetic on SQLite
    # would run in binary floating point.
    Wallet.objects.filter(pk=wallet.pk).update(balance=balance_after, updated_at=entry.created_at)
    wallet.balance = balance_after
    return Posted(entry=entry)

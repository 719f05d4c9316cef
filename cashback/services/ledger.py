"""The ledger's write primitives, shared by every operation: lock a wallet, post one entry."""

from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps_auth.models import App
from cards.models import Card
from cashback import money
from cashback.models import EVENTS, IdempotencyRecord, LedgerEntry, Wallet
from config import sql
from config.api.errors import CardInactive, DuplicateReference, IdempotencyKeyReused, InvalidInput
from members.models import Member
from members.services import MemberRef, member_resolve


@dataclass(frozen=True)
class Posted:
    """An operation's entry, and whether it had been posted before (a replay)."""

    entry: LedgerEntry
    replayed: bool = False


@dataclass(frozen=True)
class Operation:
    """How an operation recognises its own retry: by its `Idempotency-Key` record, by its
    reference on the card, and by a digest of its inputs that tells a retry from a new request."""

    card: Card
    entry_type: str
    request_fingerprint: str
    reference: str | None = None
    idempotency_record: IdempotencyRecord | None = None

    def replay(self) -> Posted | None:
        """The entry this operation posted before, or None.

        Raises `IdempotencyKeyReused` or `DuplicateReference` when the key or the reference
        was used by another request.
        """
        record = self.idempotency_record
        if record is not None and not record.claimed_new:  # a new key has no entry yet
            entry = (
                LedgerEntry.objects.select_related("wallet")
                .filter(idempotency_record=record)
                .first()
            )
            if entry is not None:
                if entry.request_fingerprint != self.request_fingerprint:
                    raise IdempotencyKeyReused()
                return Posted(entry=entry, replayed=True)
        if self.reference is not None:
            entry = (
                LedgerEntry.objects.select_related("wallet")
                .filter(card=self.card, entry_type=self.entry_type, reference=self.reference)
                .first()
            )
            if entry is not None:
                if entry.request_fingerprint != self.request_fingerprint:
                    raise DuplicateReference()
                return Posted(entry=entry, replayed=True)
        return None


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


def wallet_lock(*, app: App, card: Card, member_id: int) -> Wallet | None:
    """The member's wallet on the card, locked until the transaction ends; None if none yet."""
    return (
        Wallet.objects.select_for_update().filter(app=app, card=card, member_id=member_id).first()
    )


def wallet_open(*, app: App, card: Card, member: Member) -> Wallet:
    """The member's wallet on the card, created empty if need be, locked."""
    wallet = wallet_lock(app=app, card=card, member_id=member.pk)
    if wallet is not None:
        return wallet
    # INSERT ... ON CONFLICT DO NOTHING: a wallet created meanwhile by a concurrent request is
    # kept, without a savepoint around a failing insert.
    Wallet.objects.bulk_create([Wallet(app=app, member=member, card=card)], ignore_conflicts=True)
    return Wallet.objects.select_for_update().get(app=app, card=card, member=member)


def member_wallet(*, app: App, card: Card, ref: MemberRef, create_member: bool) -> Wallet:
    """The locked wallet of the member `ref` names. By id, an existing wallet answers in one
    query (it proves the member is the app's); otherwise the member is found, or created, first.
    Raises `NotFound` for an unknown member."""
    if ref.member_id is not None:
        wallet = wallet_lock(app=app, card=card, member_id=ref.member_id)
        if wallet is not None:
            return wallet
    member = member_resolve(app=app, ref=ref, create=create_member)
    return wallet_open(app=app, card=card, member=member)


def member_ref_digest(ref: MemberRef) -> list:
    return [ref.member_id, ref.email, ref.phone]


# The balance moves in the database, in one statement that locks the row, so an earn needs no
# read first. ROUND keeps SQLite, which does this sum in binary floating point, on the exact
# four-place value PostgreSQL's numeric arithmetic gives.
_MOVE = (
    "balance = ROUND(balance + %s, 4), entries_count = entries_count + 1, updated_at = %s",
    "card_id = %s AND member_id = %s AND app_id = %s",
)


def entry_post(*, member_id: int, operation: Operation, amount: Decimal, **fields) -> Posted | None:
    """Moves the member's wallet on the operation's card by `amount` and appends its entry;
    None when the member has no wallet on the card yet.

    The update locks the wallet until the transaction ends. Callers that must see the balance
    before they decide (a debit, a refund) lock the wallet first (`wallet_open`,
    `wallet_lock`). A concurrent request with the same key or reference that posted first
    wins: this one replays it, or raises `IdempotencyKeyReused`/`DuplicateReference` when its
    request differs.
    """
    card = operation.card
    updated_at = Wallet._meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection)
    # Only a reference, or a key taken over from a request that stopped, can collide with an
    # entry posted concurrently; only then is a savepoint worth its round trips.
    may_collide = operation.reference is not None or (
        operation.idempotency_record is not None and not operation.idempotency_record.claimed_new
    )
    try:
        with transaction.atomic() if may_collide else nullcontext():
            wallet = sql.update_returning(
                Wallet, *_MOVE, [amount, updated_at, card.pk, member_id, card.app_id]
            )
            if wallet is None:
                return None
            entry = sql.insert(
                LedgerEntry(
                    app_id=wallet.app_id,
                    wallet=wallet,
                    card_id=wallet.card_id,
                    entry_type=operation.entry_type,
                    event=EVENTS[operation.entry_type],
                    amount=amount,
                    balance_after=wallet.balance,
                    request_fingerprint=operation.request_fingerprint,
                    reference=operation.reference,
                    idempotency_record=operation.idempotency_record,
                    **fields,
                )
            )
    except IntegrityError:
        if not may_collide:
            raise
        replay = operation.replay()
        if replay is None:
            raise
        return replay
    return Posted(entry=entry)

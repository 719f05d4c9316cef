"""The ledger's write primitives, shared by every operation: lock a wallet, post one entry."""

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from apps_auth.errors import IdempotencyKeyReused
from apps_auth.models import App, IdempotencyRecord
from cards.models import Card
from cashback.errors import DuplicateReference
from cashback.events import entry_event_draft
from cashback.models import EVENTS, EntryType, LedgerEntry, Lot, LotMovement, Wallet
from cashback.selectors import member_key
from core import money
from core.errors import InvalidInput
from core.replicas import member_wrote
from members.models import Member
from members.services import MemberRef, member_new_fields, member_resolve
from webhooks.services import event_deliveries_create

ZERO = Decimal(0)


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
    entry_type: EntryType
    request_fingerprint: str
    reference: str | None = None
    idempotency_record: IdempotencyRecord | None = None

    @property
    def may_collide(self) -> bool:
        """Whether the operation's entry may collide with one posted concurrently: only a
        reference, or a key taken over from a request that stopped, can; only then is a
        savepoint worth its round trips."""
        record = self.idempotency_record
        return self.reference is not None or (record is not None and not record.claimed_new)

    def replay(self) -> Posted | None:
        """The entry this operation posted before, or None.

        Raises `IdempotencyKeyReused` or `DuplicateReference` when the key or the reference
        was used by another request.
        """
        record = self.idempotency_record
        if record is not None and not record.claimed_new:  # a new key has no entry yet
            entry = (
                LedgerEntry.objects.select_related("wallet")
                .filter(app_id=record.app_id, wallet__app_id=record.app_id)
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
                .filter(app_id=self.card.app_id, wallet__app_id=self.card.app_id)
                .filter(card=self.card, entry_type=self.entry_type, reference=self.reference)
                .first()
            )
            if entry is not None:
                if entry.request_fingerprint != self.request_fingerprint:
                    raise DuplicateReference(details={"transaction_id": entry.pk})
                return Posted(entry=entry, replayed=True)
        return None


def amount_check_places(*, field: str, amount: Decimal, currency: str) -> None:
    """Raises `InvalidInput` when the amount has more decimal places than the currency allows."""
    if not money.has_valid_places(amount, currency):
        digits = money.minor_digits(currency)
        raise InvalidInput(
            "The request is invalid.",
            details={field: [f"At most {digits} decimal places for {currency}."]},
        )


def locked_wallets() -> QuerySet[Wallet]:
    """Wallets whose rows a query locks until the transaction ends.

    Every operation that must read a balance before it decides locks its wallet through this,
    and only the wallet's row: no row joined to it is locked with it.
    """
    return Wallet.objects.select_for_update(of=("self",))


def wallet_open(*, app: App, card: Card, member: Member) -> Wallet:
    """The member's wallet on the card, created empty if need be, locked and settled
    (`wallet_settle`)."""
    wallet = locked_wallets().filter(app=app, card=card, member=member).first()
    if wallet is None:
        wallet = wallet_create(app=app, card=card, member=member)
        wallet = wallet or locked_wallets().get(app=app, card=card, member=member)
    wallet_settle(wallet=wallet, card=card)
    return wallet


def wallet_lock(*, app_id: int, wallet_id: int) -> Wallet:
    """The app's wallet `wallet_id`, locked and settled (`wallet_settle`), its card with it.
    Raises `Wallet.DoesNotExist`."""
    wallet = (
        locked_wallets()
        .select_related("card")
        .get(app_id=app_id, card__app_id=app_id, pk=wallet_id)
    )
    wallet_settle(wallet=wallet, card=wallet.card)
    return wallet


def wallet_create(
    *, app: App, card: Card, member: Member, amount: Decimal = ZERO, pending_amount: Decimal = ZERO
) -> Wallet | None:
    """Creates the member's wallet on the card, as its first entry of `amount` (spendable) and
    `pending_amount` leaves it, and returns it (`Wallet.objects.insert_new`); None when the
    member has one on the card already (a concurrent request's, kept: the caller moves it, which
    locks it)."""
    fields = _new_wallet(app, card, amount, pending_amount)
    return Wallet.objects.insert_new(**fields, member=member)


def member_wallet_create(
    *, app: App, card: Card, ref: MemberRef, amount: Decimal, pending_amount: Decimal
) -> tuple[Member, bool, Wallet | None]:
    """The member `ref` names, created when neither its email nor its phone is the app's, with
    a new wallet on the card as its first entry of `amount` and `pending_amount` leaves it
    (`wallet_create`); whether the member was created; and the new wallet, None when the member
    had one on the card already. A new member and its wallet are saved by one statement
    (`Wallet.objects.insert_new_with_member`); a known member is read, then given its wallet.
    Raises `NotFound` for an unknown member id and `MemberConflict` when the email and the phone
    name two members."""
    if ref.member_id is None:
        member = Member(**member_new_fields(app=app, ref=ref))
        fields = _new_wallet(app, card, amount, pending_amount)
        wallet = Wallet.objects.insert_new_with_member(member, **fields)
        if wallet is not None:
            return member, True, wallet
    # A known member: its id given, or its email or phone the app's already (maybe just now,
    # by a concurrent earn, whose insert this one's waited for).
    member = member_resolve(app=app, ref=ref)
    wallet = wallet_create(
        app=app, card=card, member=member, amount=amount, pending_amount=pending_amount
    )
    return member, False, wallet


def _new_wallet(app: App, card: Card, amount: Decimal, pending_amount: Decimal) -> dict:
    """A new wallet's fields, as its first entry (if any) leaves it. A wallet is created with
    its first entry by an earning only (`cashback_earn`), which sets `inactive_at`."""
    moved = bool(amount or pending_amount)
    return {
        "app": app,
        "card": card,
        "balance": amount,
        "pending_balance": pending_amount,
        "entries_count": 1 if moved else 0,
        "inactive_at": card.wallet_inactive_at(timezone.now()) if moved else None,
    }


def member_wallet(*, app: App, card: Card, ref: MemberRef) -> Wallet:
    """The locked and settled wallet of the member `ref` names (`wallet_settle`). By id, an
    existing wallet answers in one query (it proves the member is the app's); otherwise the
    member is found first. Raises `NotFound` for an unknown member."""
    if ref.member_id is not None:
        wallet = locked_wallets().filter(app=app, card=card, member_id=ref.member_id).first()
        if wallet is not None:
            wallet_settle(wallet=wallet, card=card)
            return wallet
    member = member_resolve(app=app, ref=ref)
    return wallet_open(app=app, card=card, member=member)


def member_ref_digest(ref: MemberRef) -> list:
    return [ref.member_id, ref.email, ref.phone]


def entry_post(
    *,
    member_id: int | None = None,
    member_ref: MemberRef | None = None,
    operation: Operation,
    amount: Decimal,
    pending_amount: Decimal = ZERO,
    covered: bool = False,
    unlocked: bool = False,
    settled: bool = False,
    spend: Decimal | None = None,
    new_wallet: Wallet | None = None,
    locked_wallet: Wallet | None = None,
    at: datetime | None = None,
    rule_uses: dict | None = None,
    rule_budgets: dict | None = None,
    **fields,
) -> Posted | None:
    """Moves the member's wallet on the operation's card by `amount` (spendable) and
    `pending_amount`, appends its entry (which opens a lot when it is a credit: `_lot_dates`)
    and records its webhook event (`cashback.events`); None when the member has no wallet on
    the card yet. The member is `member_id`, or the app's member `member_ref` names (found by
    the statement that moves the wallet; None too when there is no such member). `covered`: None
    too when the spendable balance does not cover the debit, and nothing changes; `unlocked`:
    None too when the member's PIN is locked; `settled`: None too when the wallet has a lot
    due for release or past its expiry (the caller settles it under its lock: `wallet_open`,
    `member_wallet`). `spend`: the
    entry takes that much out of the wallet's lots, the oldest first, in its own statement.
    `new_wallet`: the member's wallet, created in this transaction as this entry leaves it
    (`wallet_create`), which is not moved again. `locked_wallet` (an earning's): the member's
    wallet, which the caller holds locked and read as `Wallet.objects.move` would leave it but
    for this move (`Wallet.objects.programme_facts`), and found settled at `at`, the entry's
    time: the statement that saves the entry moves it. Otherwise `at` (None: now) is the time
    the move checks the wallet's lots against and the entry's time, no earlier than the
    wallet's last entry. `rule_uses`, `rule_budgets`: the
    statement that saves the entry counts the uses of the rules an earning applied and takes
    what it gave of their budgets (`LedgerEntry.objects.append`).

    The move locks the wallet until the transaction ends. Callers that must see the balance
    before they decide (a debit, a refund) lock the wallet first (`locked_wallets`). A
    concurrent request with the same key or reference that posted first wins: this one replays
    it, or raises `IdempotencyKeyReused`/`DuplicateReference` when its request differs.
    """
    card = operation.card
    earning = operation.entry_type == EntryType.EARNING
    may_collide = operation.may_collide
    if locked_wallet is not None and (not earning or at is None):
        raise ValueError("An earning moves the wallet it locked at the time it checked.")
    moved_by_entry = None
    try:
        with transaction.atomic() if may_collide else nullcontext():
            wallet = (
                locked_wallet
                or new_wallet
                or Wallet.objects.move(
                    app_id=card.app_id,
                    card_id=card.pk,
                    member_id=member_id if member_ref is None else member_ref.member_id,
                    email=None if member_ref is None else member_ref.email,
                    phone=None if member_ref is None else member_ref.phone,
                    amount=amount,
                    pending_amount=pending_amount,
                    covered=covered,
                    unlocked=unlocked,
                    settled=settled,
                    earning=earning,
                    # Counted from before the move: the entry's time is read after it (a wait for
                    # the wallet's lock ends with a later entry of another's, which the move's
                    # statement may not see), so at most that wait earlier than created_at.
                    inactive_at=card.wallet_inactive_at(timezone.now()) if earning else None,
                    at=at,
                )
            )
            if wallet is None:
                return None
            now = at or timezone.now()
            created_at = now if wallet.last_entry_at is None else max(now, wallet.last_entry_at)
            if locked_wallet is not None:  # as the entry's statement leaves it
                wallet.balance += amount
                wallet.pending_balance += pending_amount
                moved_by_entry = {
                    "move_amount": amount,
                    "move_pending": pending_amount,
                    # Counted from the entry itself, which is dated before the statement.
                    "move_inactive_at": card.wallet_inactive_at(created_at),
                    "move_now": timezone.now(),
                }
            # The entry is whole before it is saved, so that one statement saves it with its lot
            # and its webhook event, which tells of it (`LedgerEntry.objects.append`).
            entry = LedgerEntry.objects.append(
                lot=_lot_dates(operation.entry_type, amount, pending_amount, card, created_at),
                webhook_event=lambda entry: entry_event_draft(entry=entry, card=card),
                spend=spend,
                rule_uses=rule_uses,
                rule_budgets=rule_budgets,
                move=moved_by_entry,
                id=wallet.next_entry_id,
                created_at=created_at,
                app_id=wallet.app_id,
                wallet=wallet,
                card=card,
                entry_type=operation.entry_type,
                event=EVENTS[operation.entry_type],
                amount=amount,
                balance_after=wallet.balance,
                pending_amount=pending_amount,
                pending_balance_after=wallet.pending_balance,
                request_fingerprint=operation.request_fingerprint,
                reference=operation.reference,
                idempotency_record=operation.idempotency_record,
                **fields,
            )
    except IntegrityError:
        if not may_collide:
            raise
        replay = operation.replay()
        if replay is None:
            raise
        return replay
    if entry.webhook_event is not None:
        event_deliveries_create(entry.webhook_event)
    member_wrote(member_key(app_id=card.app_id, member_id=wallet.member_id))
    return Posted(entry=entry)


def entry_append(*, wallet: Wallet, operation: Operation, amount: Decimal, **fields) -> Posted:
    """`entry_post` on a wallet the caller holds (locked, or created in this transaction)."""
    posted = entry_post(member_id=wallet.member_id, operation=operation, amount=amount, **fields)
    if posted is None:  # wallets are never deleted, and this one is the caller's
        raise Wallet.DoesNotExist(f"Wallet {wallet.pk} is gone.")
    # The caller goes on with the wallet as the entry left it.
    wallet.balance, wallet.pending_balance = (
        posted.entry.balance_after,
        posted.entry.pending_balance_after,
    )
    return posted


def _lot_dates(
    entry_type: str, amount: Decimal, pending_amount: Decimal, card: Card, created_at: datetime
) -> tuple[datetime, datetime | None] | None:
    """When the lot an entry made at `created_at` opens becomes spendable and when it expires
    (None: never); None when it opens none. Each earning and each positive adjustment is a
    lot: a held earning (`pending_amount`) is spendable the card's `cashback_holding_days`
    after it, anything else at once, and it expires by the card's policy
    (`Card.lot_expires_at`)."""
    if entry_type == EntryType.EARNING or (
        entry_type == EntryType.ADJUSTMENT and amount + pending_amount > 0
    ):
        held = timedelta(days=card.cashback_holding_days if pending_amount > 0 else 0)
        available_at = created_at + held
        return available_at, card.lot_expires_at(available_at)
    return None


def lot_move(*, entry: LedgerEntry, lot: Lot, amount: Decimal, pending_amount: Decimal) -> None:
    """Moves one lot by `amount` (spendable) and `pending_amount`, both signed, for `entry`,
    and records the movement. The caller holds the lot's wallet locked."""
    Lot.objects.filter(app_id=lot.app_id, pk=lot.pk).update(
        remaining=F("remaining") + amount, pending=F("pending") + pending_amount
    )
    lot.remaining += amount
    lot.pending += pending_amount
    LotMovement.objects.create(
        app_id=entry.app_id, entry=entry, lot=lot, amount=amount, pending_amount=pending_amount
    )


def lot_release(*, wallet: Wallet, card: Card, lot: Lot) -> LedgerEntry:
    """Makes what `lot` holds spendable: one `release` entry naming the lot's source. The
    caller holds the wallet locked and the lot holds something."""
    amount = lot.pending
    posted = entry_append(
        wallet=wallet,
        operation=Operation(card=card, entry_type=EntryType.RELEASE, request_fingerprint=""),
        amount=amount,
        pending_amount=-amount,
        original_entry_id=lot.source_id,
    )
    lot_move(entry=posted.entry, lot=lot, amount=amount, pending_amount=-amount)
    return posted.entry


def lot_expire(*, wallet: Wallet, card: Card, lot: Lot) -> LedgerEntry:
    """Writes off what is left of `lot`: one `expiration` entry naming the lot's source. The
    caller holds the wallet locked and the lot has something left."""
    amount = lot.remaining
    posted = entry_append(
        wallet=wallet,
        operation=Operation(card=card, entry_type=EntryType.EXPIRATION, request_fingerprint=""),
        amount=-amount,
        original_entry_id=lot.source_id,
    )
    lot_move(entry=posted.entry, lot=lot, amount=-amount, pending_amount=ZERO)
    return posted.entry


def wallet_release_due(*, wallet: Wallet, card: Card, as_of: datetime) -> list[LedgerEntry]:
    """Releases each held lot of a locked wallet due at `as_of`, the oldest first: one
    `release` entry each, returned."""
    lots = Lot.objects.filter(
        app_id=wallet.app_id, wallet_id=wallet.pk, pending__gt=0, available_at__lte=as_of
    )
    return [
        lot_release(wallet=wallet, card=card, lot=lot)
        for lot in lots.order_by("available_at", "id")
    ]


def wallet_expire_due(*, wallet: Wallet, card: Card, as_of: datetime) -> list[LedgerEntry]:
    """Writes off the rest of each lot of a locked wallet expired at `as_of`, the soonest
    expired first: one `expiration` entry each, returned.

    A wallet past its `inactive_at` at `as_of` (no earning on the card for its
    `cashback_inactivity_days`) loses all its spendable cashback then: first each lot's expiry
    is brought forward to `inactive_at` (`wallet_inactivity_apply`), so that what is spendable
    is written off here with the lots past their own expiry."""
    if wallet.inactive_at is not None and wallet.inactive_at <= as_of:
        wallet_inactivity_apply(wallet=wallet, as_of=as_of)
    lots = Lot.objects.filter(
        app_id=wallet.app_id, wallet_id=wallet.pk, remaining__gt=0, expires_at__lte=as_of
    )
    return [
        lot_expire(wallet=wallet, card=card, lot=lot) for lot in lots.order_by("expires_at", "id")
    ]


def wallet_inactivity_apply(*, wallet: Wallet, as_of: datetime) -> None:
    """Ends a locked wallet's inactivity period, past at `as_of`: each lot with cashback in it
    expires at the wallet's `inactive_at` at the latest (a lot keeps an earlier expiry of its
    own), and `inactive_at` is cleared. Held cashback is not spendable and so does not expire
    by inactivity while it is held: a held lot expires at the latest the instant it is
    released, when it becomes spendable in a wallet still inactive. So does each lot that a
    redemption still within the reversal window took from (`cashback_reverse`): the reversal
    that puts cashback back into it finds it expired, as any lot past its expiry.

    Once cleared, the wallet leaves the sweep's index (`wallet_inactive`), and what is credited
    to it afterwards (a staff adjustment) is not expired by this period: the next earning
    starts the next one."""
    inactive_at = wallet.inactive_at
    if inactive_at is None:
        return
    window = timedelta(hours=settings.CASHBACK_REVERSAL_WINDOW_HOURS)
    reversible = LotMovement.objects.filter(
        app_id=wallet.app_id,
        entry__in=LedgerEntry.objects.filter(
            app_id=wallet.app_id,
            wallet_id=wallet.pk,
            entry_type=EntryType.REDEMPTION,
            created_at__gte=as_of - window,
        ),
    ).values("lot_id")
    Lot.objects.filter(app_id=wallet.app_id, wallet_id=wallet.pk).filter(
        Q(remaining__gt=0) | Q(pending__gt=0) | Q(pk__in=reversible)
    ).update(expires_at=Least("expires_at", Greatest("available_at", Value(inactive_at))))
    Wallet.objects.filter(app_id=wallet.app_id, pk=wallet.pk).update(inactive_at=None)
    wallet.inactive_at = None


def wallet_settle(
    *, wallet: Wallet, card: Card, due: bool | None = None, as_of: datetime | None = None
) -> None:
    """Brings a locked wallet up to now before an operation decides on its balance: each held
    lot due is released, then the rest of each lot expired is written off (and, past the
    wallet's `inactive_at`, all that is spendable), as the worker would have done. So an
    operation never spends, takes back or counts cashback past its expiry, and held cashback
    is spendable the instant it is due, whether or not the worker has come by.
    An index probe each finds nothing to do on a wallet that is up to date
    (`lot_wallet_held`, `lot_wallet_expiring`; `inactive_at` is the wallet's own). `due`: what
    the caller's lock read of the wallet found (`wallet_due`), False when nothing is. `as_of`:
    the operation's time, when it is not now (an earn's, never before the wallet's last entry,
    which a server with a clock ahead may have dated; None: now)."""
    if due is False:
        return
    now = as_of or timezone.now()
    wallet_release_due(wallet=wallet, card=card, as_of=now)
    wallet_expire_due(wallet=wallet, card=card, as_of=now)


def wallet_due(wallet: Wallet, at: datetime) -> bool:
    """Whether `wallet_settle` has anything to do at `at` on a wallet whose lots were read with
    its lock (`Wallet.objects.programme_facts`; a wallet read otherwise is taken to need it): a
    held lot due, a lot past its expiry, the wallet past its `inactive_at`."""
    if not wallet.lots_read:
        return True
    dates = (wallet.next_available_at, wallet.next_expiry_at, wallet.inactive_at)
    return any(date is not None and date <= at for date in dates)


def app_ids() -> Iterator[int]:
    """Every app's key: the background sweeps go app by app, each query within one app (on its
    index led by the app, and on one node where the apps are distributed)."""
    yield from App.objects.order_by("pk").values_list("pk", flat=True)


def wallets_of(lots: QuerySet[Lot], batch: int = 500) -> Iterator[tuple[int, int]]:
    """The wallets `lots` belong to, as (app, wallet), app by app and a batch at a time, asking
    again after each batch until none is left: the caller handles each wallet so that its lots
    leave `lots` (released, expired)."""
    for app_id in app_ids():
        of_app = lots.filter(app_id=app_id).order_by()
        while wallet_ids := list(of_app.values_list("wallet_id", flat=True).distinct()[:batch]):
            yield from ((app_id, wallet_id) for wallet_id in wallet_ids)

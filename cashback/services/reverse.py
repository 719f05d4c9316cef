"""A redemption undone (the sale it paid for was cancelled): its amount goes back into the lots it
came from."""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps_auth.models import App, IdempotencyRecord
from cards.models import Card
from cashback.errors import AlreadyReversed, ReversalWindowClosed
from cashback.models import ClaimSettlement, EntryType, LedgerEntry, Lot, LotMovement
from cashback.serializers import timestamp
from cashback.services.breakdowns import claim_settlement_returns
from cashback.services.ledger import (
    ZERO,
    Operation,
    Posted,
    entry_append,
    lot_expire,
    lot_move,
    wallet_lock,
)
from core.errors import NotFound
from core.fingerprint import digest
from programme.services import rule_budget_return


@transaction.atomic(durable=True)
def cashback_reverse(
    *,
    app: App,
    card: Card,
    transaction_id: int,
    reason: str | None = None,
    reference: str | None = None,
    idempotency_record: IdempotencyRecord | None = None,
) -> Posted:
    """Gives a redemption's amount back: one `reversal` entry, and each lot the redemption spent
    gets back what it gave, with its own expiry date. A lot that expired meanwhile is written
    off again at once (an `expiration` entry), and the reversal records what that took as its
    `unrecovered_amount`. What stays spendable settles first what refunds posted since the
    redemption could not take back (their claims, oldest first: `ClaimSettlement`), so that
    a refund and a reversal in either order leave the same balance; the entry is credited net
    of it and takes it out of the lots: a claim's own earning's first, then the oldest. What
    settles a claim on a rule's contribution returns to the rule's budget
    (`claim_settlement_returns`), as what the refund took back of it did.

    Only a redemption of the app on `card`, at most once, within
    `CASHBACK_REVERSAL_WINDOW_HOURS`. Raises `NotFound`, `AlreadyReversed`,
    `ReversalWindowClosed`, `DuplicateReference` and `IdempotencyKeyReused`. A card made
    inactive since still takes its reversals: they give back what is owed.
    """
    operation = Operation(
        card=card,
        entry_type=EntryType.REVERSAL,
        reference=reference,
        idempotency_record=idempotency_record,
        request_fingerprint=digest({"transaction_id": transaction_id, "reason": reason}),
    )
    replay = operation.replay()
    if replay is not None:
        return replay
    redemption = LedgerEntry.objects.filter(
        pk=transaction_id, app=app, card=card, entry_type=EntryType.REDEMPTION
    ).first()
    if redemption is None:
        raise NotFound("No redemption with this transaction_id on this card.")
    wallet = wallet_lock(app_id=app.pk, wallet_id=redemption.wallet_id)
    # Under the wallet's lock: a concurrent reversal of the same redemption has committed or
    # waits behind this one.
    earlier = (
        LedgerEntry.objects.filter(
            app=app, original_entry=redemption, entry_type=EntryType.REVERSAL
        )
        .values_list("pk", flat=True)
        .first()
    )
    if earlier is not None:
        raise AlreadyReversed(details={"reversal_transaction_id": earlier})
    window = timedelta(hours=settings.CASHBACK_REVERSAL_WINDOW_HOURS)
    now = timezone.now()
    if redemption.created_at + window < now:
        raise ReversalWindowClosed(
            details={
                "redeemed_at": timestamp(redemption.created_at),
                "reversal_window_hours": settings.CASHBACK_REVERSAL_WINDOW_HOURS,
            }
        )

    movements = list(
        LotMovement.objects.filter(app=app, entry=redemption, lot__app=app)
        .select_related("lot")
        .order_by("id")
    )
    expired_lots = {
        m.lot_id: m.lot
        for m in movements
        if m.lot.expires_at is not None and m.lot.expires_at <= now
    }
    # Lots that expired meanwhile are written off again at once: what goes back into them and
    # what they still hold (the worker may not have come by yet).
    written_off = sum((-m.amount for m in movements if m.lot_id in expired_lots), start=ZERO) + sum(
        (lot.remaining for lot in expired_lots.values()), start=ZERO
    )
    claims = _claims_since(redemption)
    settled = min(sum((owed for _, owed in claims), start=ZERO), -redemption.amount - written_off)
    posted = entry_append(
        wallet=wallet,
        operation=operation,
        amount=-redemption.amount - settled,
        original_entry=redemption,
        unrecovered_amount=written_off,
        metadata={"reason": reason} if reason else {},
    )
    if posted.replayed:
        return posted
    for movement in movements:
        lot_move(entry=posted.entry, lot=movement.lot, amount=-movement.amount, pending_amount=ZERO)
    for lot in expired_lots.values():
        lot_expire(wallet=wallet, card=card, lot=lot)
    left = settled
    returns: dict[int, Decimal] = defaultdict(Decimal)
    for refund, owed in claims:
        if left == 0:
            break
        take = min(owed, left)
        # A claim is the named earning's: it is settled from that earning's lot first, as the
        # refund would have taken it had the reversal come first; then from the oldest lots.
        named = None
        if refund.original_entry_id is not None:
            named = Lot.objects.filter(app=app, source_id=refund.original_entry_id).first()
        Lot.objects.spend(entry=posted.entry, amount=take, first=named)
        ClaimSettlement.objects.create(app=app, refund=refund, entry=posted.entry, amount=take)
        # What settles the refund's claim on a rule's contribution returns to its budget, as
        # what the refund took back of it did.
        settled_returns = claim_settlement_returns(
            refund=refund, before=refund.unrecovered_amount - owed, take=take
        )
        for rule_id, amount in settled_returns.items():
            returns[rule_id] += amount
        left -= take
    # Once for all the claims: the rules are locked in the order every writer locks them in.
    rule_budget_return(app_id=app.pk, returns=returns)
    return posted


def _claims_since(redemption: LedgerEntry) -> list[tuple[LedgerEntry, Decimal]]:
    """The refunds of the redemption's wallet posted after it with cashback still owed (what
    they could not take back, less what reversals settled since), oldest first, each with what
    it is still owed. Read under the wallet's lock."""
    settled = (
        ClaimSettlement.objects.filter(app_id=redemption.app_id, refund=OuterRef("pk"))
        .values("refund")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    refunds = (
        LedgerEntry.objects.filter(
            app_id=redemption.app_id,
            wallet_id=redemption.wallet_id,
            entry_type=EntryType.REFUND,
            sequence__gt=redemption.sequence,
            unrecovered_amount__gt=0,
        )
        # A refund of a held earning takes from that earning's held cashback only, never from
        # the balance a reversal refills: what it could not take is not owed by the balance.
        .exclude(original_entry__isnull=False, pending_amount__lt=0)
        .annotate(settled=Coalesce(Subquery(settled), ZERO))
        .order_by("sequence")
    )
    return [
        (refund, refund.unrecovered_amount - refund.settled)
        for refund in refunds
        if refund.unrecovered_amount > refund.settled
    ]

from decimal import Decimal
from typing import cast

from django.db import transaction
from django.db.models import F, Q, Sum

from apps_auth.models import App, IdempotencyRecord
from cards.models import Card
from cards.selectors import card_check_active
from cashback.errors import RefundExceedsPurchase
from cashback.models import EntryType, LedgerEntry, Lot, Wallet
from cashback.services.breakdowns import (
    breakdown_share,
    breakdown_share_of_lines,
    refund_breakdown,
)
from cashback.services.ledger import (
    ZERO,
    Operation,
    Posted,
    amount_check_places,
    entry_append,
    lot_move,
    member_ref_digest,
    member_wallet,
)
from core import money
from core.errors import NotFound
from core.fingerprint import digest
from members.services import MemberRef
from programme.engine import RefundLine
from programme.services import rule_budget_return

# What a refund set out to take back: what it took (its amounts are negative) plus what it
# could not.
CLAIMED = F("unrecovered_amount") - F("amount") - F("pending_amount")


@transaction.atomic(durable=True)
def cashback_refund(
    *,
    app: App,
    card: Card,
    member_ref: MemberRef,
    refund_amount: Decimal,
    cashback_to_deduct: Decimal | None = None,
    original_transaction_id: int | None = None,
    lines: list[RefundLine] | None = None,
    reference: str | None = None,
    metadata: dict | None = None,
    idempotency_record: IdempotencyRecord | None = None,
) -> Posted:
    """Takes back the cashback of a refunded purchase, never below a zero balance.

    Against an earning with a breakdown (`LedgerEntry.breakdown`), the refund takes back its
    share of each contribution and keeps it as its own breakdown: by `lines` (an earning made
    with lines: each refunded line takes back, of every contribution it earned, the share its
    amount is of what that contribution matched; a contribution whose lines are all refunded
    gives its exact rest), else in proportion to what each contribution has left. What it took
    back of a rule returns to the rule's budget (`rule_budget_return`): what it took, not what
    it could not recover.

    The deduction is `cashback_to_deduct` when given; else, against an original earning, its
    share of what that earning credited; else the card's rate on `refund_amount` (half-up,
    capped), or the refunded amount's share of what the wallet's earnings at that rate credited
    when that is more (`_share_of_wallet`: purchases earned one by one and refunded as one give
    back what they earned, their rounding and caps included).
    Refunds of one earning never exceed its purchase nor take back more than it credited; the one
    that completes the purchase takes the exact remainder. What the balance cannot cover is
    recorded as `unrecovered_amount`. Held cashback gives first: a held earning's refund comes
    out of its pending part only, a refund naming none out of the wallet's held cashback
    (newest first) before its spendable balance (oldest lots first).

    Raises `CardInactive`, `InvalidInput` (also lines given for an earning made without),
    `NotFound` (member, original), `RefundExceedsPurchase` (also a line refunded past its
    amount, with `details.sku`), `DuplicateReference` and `IdempotencyKeyReused`. Never creates
    a member.
    """
    card_check_active(card)
    amount_check_places(field="refund_amount", amount=refund_amount, currency=card.currency)
    if cashback_to_deduct is not None:
        amount_check_places(
            field="cashback_to_deduct", amount=cashback_to_deduct, currency=card.currency
        )

    operation = Operation(
        card=card,
        entry_type=EntryType.REFUND,
        reference=reference,
        idempotency_record=idempotency_record,
        request_fingerprint=digest(
            {
                "member": member_ref_digest(member_ref),
                "refund_amount": refund_amount,
                "cashback_to_deduct": cashback_to_deduct,
                "original": original_transaction_id,
                "metadata": metadata or {},
            }
            | ({} if lines is None else {"lines": [[line.sku, line.amount] for line in lines]})
        ),
    )
    replay = operation.replay()
    if replay is not None:
        return replay

    wallet = member_wallet(app=app, card=card, ref=member_ref)
    original = None
    share: list[Decimal] | None = None
    if original_transaction_id is None:
        to_deduct = cashback_to_deduct
        if to_deduct is None:
            to_deduct = max(
                money.cashback_for(
                    refund_amount, card.cashback_percentage, card.currency, card.cashback_max_amount
                ),
                _share_of_wallet(
                    wallet=wallet,
                    refund_amount=refund_amount,
                    percentage=card.cashback_percentage,
                    currency=card.currency,
                ),
            )
    else:
        original = _original_earning(wallet=wallet, entry_id=original_transaction_id)
        if lines is not None:
            share = breakdown_share_of_lines(original=original, lines=lines, currency=card.currency)
        to_deduct = _deduction_against(
            original=original,
            refund_amount=refund_amount,
            requested=cashback_to_deduct if share is None else sum(share, ZERO),
            currency=card.currency,
        )
        if share is None and original.breakdown is not None:
            share = breakdown_share(original=original, amount=to_deduct, currency=card.currency)

    # Held cashback goes first: a named earning still held gives only from its own pending
    # part; without a named earning the wallet's held cashback gives before its balance.
    lot = None if original is None else original.lot
    if lot is not None and lot.pending > 0:
        from_pending, from_balance = min(to_deduct, lot.pending), ZERO
    elif lot is not None:
        from_pending, from_balance = ZERO, min(to_deduct, wallet.balance)
    else:
        from_pending = min(to_deduct, wallet.pending_balance)
        from_balance = min(to_deduct - from_pending, wallet.balance)
    breakdown = None
    if original is not None and original.breakdown is not None and share is not None:
        breakdown = refund_breakdown(
            original=original,
            claims=share,
            taken=from_pending + from_balance,
            currency=card.currency,
        )
    posted = entry_append(
        wallet=wallet,
        operation=operation,
        amount=-from_balance,
        pending_amount=-from_pending,
        refund_amount=refund_amount,
        cashback_percentage=card.cashback_percentage,
        unrecovered_amount=to_deduct - from_pending - from_balance,
        original_entry=original,
        metadata=metadata or {},
        breakdown=breakdown,
        lines=None if lines is None else [line.as_dict() for line in lines],
    )
    if not posted.replayed:
        _lots_take(entry=posted.entry, named=lot, pending=from_pending, spendable=from_balance)
        if breakdown is not None:
            rule_budget_return(
                app_id=card.app_id,
                returns={
                    part["rule_id"]: -Decimal(part["amount"])
                    for part in breakdown
                    if part.get("budgeted")
                },
            )
    return posted


def _lots_take(*, entry: LedgerEntry, named: Lot | None, pending: Decimal, spendable: Decimal):
    """Takes a refund out of the lots: its pending part from the named earning's lot, else from
    the wallet's held lots, newest earning first; its spendable part from the named lot first,
    then the oldest."""
    if pending > 0:
        held = (
            [named]
            if named is not None
            else Lot.objects.filter(
                app_id=entry.app_id, wallet_id=entry.wallet_id, pending__gt=0
            ).order_by("-source_id")
        )
        for lot in held:
            take = min(pending, lot.pending)
            lot_move(entry=entry, lot=lot, amount=ZERO, pending_amount=-take)
            pending -= take
            if pending == 0:
                break
    Lot.objects.spend(entry=entry, amount=spendable, first=named)


def _share_of_wallet(
    *, wallet: Wallet, refund_amount: Decimal, percentage: Decimal, currency: str
) -> Decimal:
    """What the wallet's earnings at the card's rate `percentage` credited for `refund_amount`
    of their purchases, at their own average, rounded half-up; never more than what the
    wallet's earnings credited and its refunds have not claimed yet.

    A refund that names no earning cannot know which purchases it undoes; the card's rate on
    its amount is what one purchase of that amount earns, which leaves a member ahead when the
    purchases were earned one by one, each rounded up or capped on its own (100 purchases of
    17 JPY at 3 % earn 100; the rate on 1,700 is 51). Their own average cannot. Only earnings
    at the card's rate count (one made at another rate says nothing of this one), and the
    average is of all of them, earlier refunds included at their own share whatever they took
    (a refund that took nothing, as a goodwill gesture, does not raise this one's). Runs under
    the wallet's lock."""
    earning, refund = Q(entry_type=EntryType.EARNING), Q(entry_type=EntryType.REFUND)
    at_rate = earning & Q(cashback_percentage=percentage)
    moved = F("amount") + F("pending_amount")  # an earning's cashback
    totals = LedgerEntry.objects.filter(
        app_id=wallet.app_id,
        wallet_id=wallet.pk,
        entry_type__in=[EntryType.EARNING, EntryType.REFUND],
    ).aggregate(
        purchased=Sum("purchase_amount", filter=at_rate, default=ZERO),
        at_rate=Sum(moved, filter=at_rate, default=ZERO),
        credited=Sum(moved, filter=earning, default=ZERO),
        claimed=Sum(CLAIMED, filter=refund, default=ZERO),
    )
    purchased, unclaimed = totals["purchased"], totals["credited"] - totals["claimed"]
    if purchased <= 0 or unclaimed <= 0:
        return ZERO
    share = money.quantize(totals["at_rate"] * min(refund_amount, purchased) / purchased, currency)
    return min(share, unclaimed)


def _original_earning(*, wallet: Wallet, entry_id: int) -> LedgerEntry:
    original = (
        LedgerEntry.objects.select_related("lot")
        .filter(app_id=wallet.app_id, lot__app_id=wallet.app_id)  # an earning has its lot
        .filter(wallet=wallet, entry_type=EntryType.EARNING, pk=entry_id)
        .first()
    )
    if original is None:
        raise NotFound("No earning with this original_transaction_id on this member's card.")
    return original


def _deduction_against(
    *, original: LedgerEntry, refund_amount: Decimal, requested: Decimal | None, currency: str
) -> Decimal:
    """What a refund of `refund_amount` takes back of the cashback `original` credited.

    Runs under the wallet's lock, so the earlier refunds it sums cannot change meanwhile.
    """
    earlier = original.followers.filter(
        app_id=original.app_id, entry_type=EntryType.REFUND
    ).aggregate(
        refunded=Sum("refund_amount", default=ZERO),
        claimed=Sum(CLAIMED, default=ZERO),
    )
    refunded, claimed = earlier["refunded"], earlier["claimed"]
    # An earning always records its purchase.
    purchase, credited = cast(Decimal, original.purchase_amount), original.total_amount
    if refunded + refund_amount > purchase:
        raise RefundExceedsPurchase(
            details={
                "purchase_amount": money.quantize(purchase, currency),
                "already_refunded": money.quantize(refunded, currency),
                "refundable": money.quantize(purchase - refunded, currency),
                "original_transaction_id": original.pk,
            }
        )
    remaining = credited - claimed
    if requested is not None:
        return min(requested, remaining)
    if refunded + refund_amount == purchase:
        return remaining
    share = money.quantize(credited * refund_amount / purchase, currency)
    return min(share, remaining)

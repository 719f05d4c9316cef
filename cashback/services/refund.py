from decimal import Decimal
from typing import cast

from django.db import transaction
from django.db.models import Sum

from apps_auth.models import App, IdempotencyRecord
from cards.models import Card
from cards.selectors import card_check_active
from cashback.errors import RefundExceedsPurchase
from cashback.models import EntryType, LedgerEntry, Wallet
from cashback.services.ledger import (
    Operation,
    Posted,
    amount_check_places,
    entry_append,
    member_ref_digest,
    member_wallet,
)
from core import money
from core.errors import NotFound
from core.fingerprint import digest
from members.services import MemberRef

ZERO = Decimal(0)


@transaction.atomic(durable=True)
def cashback_refund(
    *,
    app: App,
    card: Card,
    member_ref: MemberRef,
    refund_amount: Decimal,
    cashback_to_deduct: Decimal | None = None,
    original_transaction_id: int | None = None,
    reference: str | None = None,
    metadata: dict | None = None,
    idempotency_record: IdempotencyRecord | None = None,
) -> Posted:
    """Takes back the cashback of a refunded purchase, never below a zero balance.

    The deduction is `cashback_to_deduct` when given, else the card's rate on `refund_amount`
    (half-up, capped), or, against an original earning, its share of what that earning credited.
    Refunds of one earning never exceed its purchase nor take back more than it credited; the one
    that completes the purchase takes the exact remainder. What the balance cannot cover is
    recorded as `unrecovered_amount`. Raises `CardInactive`, `InvalidInput`, `NotFound` (member,
    original), `RefundExceedsPurchase`, `DuplicateReference` and `IdempotencyKeyReused`. Never
    creates a member.
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
        ),
    )
    replay = operation.replay()
    if replay is not None:
        return replay

    wallet = member_wallet(app=app, card=card, ref=member_ref, create_member=False)
    original = None
    if original_transaction_id is None:
        to_deduct = cashback_to_deduct
        if to_deduct is None:
            to_deduct = money.cashback_for(
                refund_amount, card.cashback_percentage, card.currency, card.cashback_max_amount
            )
    else:
        original = _original_earning(wallet=wallet, entry_id=original_transaction_id)
        to_deduct = _deduction_against(
            original=original,
            refund_amount=refund_amount,
            requested=cashback_to_deduct,
            currency=card.currency,
        )

    deducted = min(to_deduct, wallet.balance)
    return entry_append(
        wallet=wallet,
        operation=operation,
        amount=-deducted,
        refund_amount=refund_amount,
        cashback_percentage=card.cashback_percentage,
        unrecovered_amount=to_deduct - deducted,
        original_entry=original,
        metadata=metadata or {},
    )


def _original_earning(*, wallet: Wallet, entry_id: int) -> LedgerEntry:
    original = LedgerEntry.objects.filter(
        wallet=wallet, entry_type=EntryType.EARNING, pk=entry_id
    ).first()
    if original is None:
        raise NotFound("No earning with this original_transaction_id on this member's card.")
    return original


def _deduction_against(
    *, original: LedgerEntry, refund_amount: Decimal, requested: Decimal | None, currency: str
) -> Decimal:
    """What a refund of `refund_amount` takes back of the cashback `original` credited.

    Runs under the wallet's lock, so the earlier refunds it sums cannot change meanwhile.
    """
    earlier = original.refunds.aggregate(
        refunded=Sum("refund_amount"), taken=Sum("amount"), unrecovered=Sum("unrecovered_amount")
    )
    refunded = earlier["refunded"] or ZERO
    # What earlier refunds set out to take back: what they took plus what they could not.
    claimed = -(earlier["taken"] or ZERO) + (earlier["unrecovered"] or ZERO)
    # An earning always records its purchase.
    purchase, credited = cast(Decimal, original.purchase_amount), original.amount
    if refunded + refund_amount > purchase:
        raise RefundExceedsPurchase(
            details={"purchase_amount": purchase, "already_refunded": refunded}
        )
    remaining = credited - claimed
    if requested is not None:
        return min(requested, remaining)
    if refunded + refund_amount == purchase:
        return remaining
    share = money.quantize(credited * refund_amount / purchase, currency)
    return min(share, remaining)

from decimal import Decimal
from typing import Any

from django.db import transaction

from apps_auth.models import App, IdempotencyRecord
from cards.models import Card
from cards.selectors import card_check_active
from cashback.errors import BelowMinimumPurchase
from cashback.models import EntryType, Wallet
from cashback.services.ledger import (
    ZERO,
    Operation,
    Posted,
    amount_check_places,
    entry_append,
    entry_post,
    member_ref_digest,
    member_wallet_create,
    wallet_open,
)
from core import money
from core.fingerprint import digest
from members.selectors import member_match
from members.services import MemberRef


@transaction.atomic(durable=True)
def cashback_earn(
    *,
    app: App,
    card: Card,
    member_ref: MemberRef,
    purchase_amount: Decimal,
    reference: str | None = None,
    metadata: dict | None = None,
    idempotency_record: IdempotencyRecord | None = None,
) -> Posted:
    """Credits `purchase_amount × percentage / 100` (half-up, capped) to the member's wallet:
    to its spendable balance, or to its pending balance on a card that holds cashback. Either
    way the earning opens a lot (`lot_open`).

    Creates the member (with the name, the email and the phone given) when neither the email
    nor the phone is the app's; the entry records that it did. Nothing is written unless the whole
    earn succeeds; a retry (same key or reference, same inputs) replays the first entry. Raises
    `CardInactive`, `InvalidInput` (decimal places), `BelowMinimumPurchase` (under the card's
    minimum, or too small to earn a minor unit), `NotFound` (unknown member id),
    `MemberConflict` (the email and the phone name two members), `DuplicateReference` and
    `IdempotencyKeyReused`.
    """
    card_check_active(card)
    amount_check_places(field="purchase_amount", amount=purchase_amount, currency=card.currency)
    if purchase_amount < card.cashback_min_amount:
        raise BelowMinimumPurchase(
            details={"cashback_min_amount": money.quantize(card.cashback_min_amount, card.currency)}
        )
    cashback = money.cashback_for(
        purchase_amount, card.cashback_percentage, card.currency, card.cashback_max_amount
    )
    if cashback == 0:
        raise BelowMinimumPurchase("The purchase is too small to earn any cashback.")

    operation = Operation(
        card=card,
        entry_type=EntryType.EARNING,
        reference=reference,
        idempotency_record=idempotency_record,
        request_fingerprint=digest(
            {
                "member": member_ref_digest(member_ref),
                "purchase_amount": purchase_amount,
                "metadata": metadata or {},
            }
        ),
    )
    replay = operation.replay()
    if replay is not None:
        return replay

    # On a card that holds cashback the earning is pending: it moves the pending balance, and
    # its lot is released `cashback_holding_days` later.
    held = card.cashback_holding_days > 0
    entry: dict[str, Any] = {
        "operation": operation,
        "amount": ZERO if held else cashback,
        "pending_amount": cashback if held else ZERO,
        "purchase_amount": purchase_amount,
        "cashback_percentage": card.cashback_percentage,
        "metadata": metadata or {},
    }
    # A member with a wallet on the card is found (by id, email or phone) and credited in one
    # statement (the wallet's existence proves the member is the app's), unless a lot of the
    # wallet is due for release or past its expiry; otherwise the member is found, or
    # created, first, and an existing wallet locked and settled before the credit. Named by
    # both email and phone, the member is matched first: the two must not name two members.
    if member_ref.by_email_and_phone:
        member = member_match(app=app, email=member_ref.email, phone=member_ref.phone)
        if member is not None:
            member_ref = MemberRef(member_id=member.pk)
    posted = entry_post(member_ref=member_ref, settled=True, **entry)
    if posted is not None:
        return posted
    # The member's first entry on this card, a new member, or a wallet to settle first.
    member, created, wallet = member_wallet_create(
        app=app,
        card=card,
        ref=member_ref,
        amount=entry["amount"],
        pending_amount=entry["pending_amount"],
    )
    if wallet is None:  # the member had a wallet on the card (maybe just now, concurrently)
        wallet = wallet_open(app=app, card=card, member=member)
        return entry_append(wallet=wallet, member_created=created, **entry)
    posted = entry_post(member_id=member.pk, member_created=created, new_wallet=wallet, **entry)
    if posted is None:  # wallets are never deleted
        raise Wallet.DoesNotExist(f"The wallet of member {member.pk} is gone.")
    return posted

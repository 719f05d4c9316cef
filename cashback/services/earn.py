from decimal import Decimal

from django.db import transaction

from apps_auth.models import App
from cards.models import Card
from cashback import money
from cashback.models import EntryType
from cashback.services.ledger import (
    Posted,
    amount_check_places,
    card_check_active,
    entry_post,
    entry_replay,
    fingerprint,
    wallet_lock,
)
from config.api.errors import BelowMinimumPurchase
from members.services import MemberRef, member_resolve


@transaction.atomic(durable=True)
def cashback_earn(
    *,
    app: App,
    card: Card,
    member_ref: MemberRef,
    purchase_amount: Decimal,
    reference: str | None = None,
    metadata: dict | None = None,
) -> Posted:
    """Credits `purchase_amount × percentage / 100` (half-up, capped) to the member's wallet.

    Creates the member when the email or phone is unknown. Nothing is written unless the whole
    earn succeeds. Raises `CardInactive`, `InvalidInput` (decimal places), `BelowMinimumPurchase`
    (under the card's minimum, or too small to earn a minor unit), `NotFound` (unknown member id)
    and `DuplicateReference`.
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

    request_fingerprint = fingerprint(
        member=[member_ref.member_id, member_ref.email, member_ref.phone],
        purchase_amount=purchase_amount,
        metadata=metadata or {},
    )
    replay = entry_replay(
        card=card,
        entry_type=EntryType.EARNING,
        reference=reference,
        request_fingerprint=request_fingerprint,
    )
    if replay is not None:
        return Posted(entry=replay, replayed=True)

    member = member_resolve(app=app, ref=member_ref, create=True)
    wallet = wallet_lock(app=app, member=member, card=card)
    return entry_post(
        wallet=wallet,
        entry_type=EntryType.EARNING,
        amount=cashback,
        request_fingerprint=request_fingerprint,
        purchase_amount=purchase_amount,
        cashback_percentage=card.cashback_percentage,
        reference=reference,
        metadata=metadata or {},
    )

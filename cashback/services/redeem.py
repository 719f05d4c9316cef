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
from config.api.errors import InsufficientBalance, PinNotAllowed
from members.models import Member
from members.services import member_pin_verify


def cashback_redeem(
    *,
    app: App,
    card: Card,
    member: Member,
    amount: Decimal,
    pin: str | None = None,
    reference: str | None = None,
    metadata: dict | None = None,
) -> Posted:
    """Debits `amount` from the member's wallet; the balance never goes below zero.

    A PIN, when given, is checked first and its misses are counted even though the request then
    fails. Raises `CardInactive`, `InvalidInput`, `PinNotAllowed`, `PinNotSet`, `PinLocked`,
    `InvalidPin`, `InsufficientBalance` and `DuplicateReference`.
    """
    card_check_active(card)
    amount_check_places(field="amount", amount=amount, currency=card.currency)
    if pin is not None:
        if not card.allows_pin_redemption:
            raise PinNotAllowed()
        member_pin_verify(member=member, pin=pin)
    return _redeem(
        app=app, card=card, member=member, amount=amount, reference=reference, metadata=metadata
    )


@transaction.atomic(durable=True)
def _redeem(*, app, card, member, amount, reference, metadata) -> Posted:
    request_fingerprint = fingerprint(member=member.pk, amount=amount, metadata=metadata or {})
    replay = entry_replay(
        card=card,
        entry_type=EntryType.REDEMPTION,
        reference=reference,
        request_fingerprint=request_fingerprint,
    )
    if replay is not None:
        return Posted(entry=replay, replayed=True)

    wallet = wallet_lock(app=app, member=member, card=card)
    if amount > wallet.balance:
        raise InsufficientBalance(
            details={
                "balance": money.quantize(wallet.balance, card.currency),
                "amount": amount,
            }
        )
    return entry_post(
        wallet=wallet,
        entry_type=EntryType.REDEMPTION,
        amount=-amount,
        request_fingerprint=request_fingerprint,
        reference=reference,
        metadata=metadata or {},
    )

from decimal import Decimal

from django.db import transaction

from apps_auth.models import App, IdempotencyRecord
from cards.models import Card
from cards.selectors import card_check_active
from cashback.errors import InsufficientBalance, PinNotAllowed
from cashback.models import EntryType
from cashback.services.ledger import (
    Operation,
    Posted,
    amount_check_places,
    entry_append,
    entry_post,
    wallet_open,
)
from core import money
from core.fingerprint import digest
from members.models import Member
from members.selectors import member_get
from members.services import member_pin_check_unlocked, member_pin_verify


def cashback_redeem(
    *,
    app: App,
    card: Card,
    member_id: int,
    amount: Decimal,
    pin: str | None = None,
    reference: str | None = None,
    metadata: dict | None = None,
    idempotency_record: IdempotencyRecord | None = None,
) -> Posted:
    """Debits `amount` from the spendable balance of the app's member `member_id`, out of its
    oldest lots first; the balance never goes below zero, and nothing is debited while the
    member's PIN is locked, with a PIN or without.

    A PIN, when given, is checked first and its misses are counted even though the request then
    fails. Raises `CardInactive`, `InvalidInput`, `PinNotAllowed`, `NotFound` (not the app's
    member), `PinNotSet`, `PinLocked`, `InvalidPin`, `InsufficientBalance`,
    `DuplicateReference` and `IdempotencyKeyReused`.
    """
    card_check_active(card)
    amount_check_places(field="amount", amount=amount, currency=card.currency)
    member = None
    if pin is not None:
        if not card.allows_pin_redemption:
            raise PinNotAllowed()
        member = member_get(app=app, member_id=member_id)
        member_pin_verify(member=member, pin=pin)
    operation = Operation(
        card=card,
        entry_type=EntryType.REDEMPTION,
        reference=reference,
        idempotency_record=idempotency_record,
        request_fingerprint=digest(
            {"member": member_id, "amount": amount, "metadata": metadata or {}}
        ),
    )
    return _redeem(
        app=app,
        member_id=member_id,
        member=member,
        operation=operation,
        amount=amount,
        metadata=metadata,
    )


@transaction.atomic(durable=True)
def _redeem(
    *, app, member_id: int, member: Member | None, operation: Operation, amount, metadata
) -> Posted:
    replay = operation.replay()
    if replay is not None:
        return replay
    # The wallet is debited at once when its balance covers the amount, the member's PIN is
    # not locked (the wallet, the app's, proves the member is) and no lot of it is due for
    # release or past its expiry, and the entry's statement spends the lots; otherwise the
    # member is read (unless its PIN was just checked), its wallet locked (opened, if need
    # be), settled, and read to say why, or debited if it covers the amount now.
    entry = {"operation": operation, "amount": -amount, "metadata": metadata or {}, "spend": amount}
    posted = entry_post(member_id=member_id, covered=True, unlocked=True, settled=True, **entry)
    if posted is None:
        member = member or member_get(app=app, member_id=member_id)
        member_pin_check_unlocked(member)
        wallet = wallet_open(app=app, card=operation.card, member=member)
        if amount > wallet.balance:
            currency = operation.card.currency
            raise InsufficientBalance(
                details={
                    "balance": money.quantize(wallet.balance, currency),
                    "amount": money.quantize(amount, currency),
                }
            )
        posted = entry_append(wallet=wallet, **entry)
    return posted

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from cashback.errors import InsufficientBalance
from cashback.models import EntryType, Wallet
from cashback.services.ledger import (
    Operation,
    Posted,
    amount_check_places,
    entry_append,
    locked_wallets,
)
from core import money
from core.errors import InvalidInput
from core.fingerprint import digest


@transaction.atomic(durable=True)
def cashback_adjust(
    *, wallet: Wallet, amount: Decimal, reason: str, staff_user: AbstractBaseUser
) -> Posted:
    """Credits (amount > 0) or debits (amount < 0) a wallet by hand, as an `adjustment` entry
    carrying the staff user and the reason. Same lock, constraint and rounding as the API.

    Raises `InvalidInput` (zero amount, too many decimals, no reason) and `InsufficientBalance`
    when a debit would take the balance below zero.
    """
    if not reason.strip():
        raise InvalidInput(details={"reason": ["Give the reason for the adjustment."]})
    if amount == 0:
        raise InvalidInput(details={"amount": ["An adjustment moves money: not 0."]})
    card = wallet.card
    amount_check_places(field="amount", amount=amount, currency=card.currency)
    locked = locked_wallets().get(pk=wallet.pk)
    if locked.balance + amount < 0:
        raise InsufficientBalance(
            "A debit cannot take the balance below zero.",
            details={"balance": money.quantize(locked.balance, card.currency), "amount": amount},
        )
    operation = Operation(
        card=card,
        entry_type=EntryType.ADJUSTMENT,
        request_fingerprint=digest({"wallet": wallet.pk, "amount": amount, "reason": reason}),
    )
    return entry_append(
        wallet=locked,
        operation=operation,
        amount=amount,
        created_by=staff_user,
        metadata={"reason": reason.strip()},
    )

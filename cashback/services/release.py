"""Held cashback becomes spendable: each held lot due is released, one entry each."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from cashback.models import Lot
from cashback.services.ledger import ZERO, locked_wallets, wallet_release_due, wallets_of


@dataclass(frozen=True)
class Released:
    released: int  # entries written
    amount: Decimal  # their total, whatever the cards' currencies


def cashback_release_due(*, as_of: datetime | None = None) -> Released:
    """Releases every held lot whose `available_at` is at or before `as_of` (default now), app by
    app, one wallet per transaction.

    Runs safely beside itself and beside refunds: each wallet's lots are read again under the
    wallet's lock, so a lot is released once (the database refuses a second release of an
    earning besides) and a refund that took the held cashback first leaves nothing to release.
    """
    as_of = as_of or timezone.now()
    released, amount = 0, ZERO
    for app_id, wallet_id in wallets_of(Lot.objects.filter(pending__gt=0, available_at__lte=as_of)):
        count, total = _release_wallet(app_id=app_id, wallet_id=wallet_id, as_of=as_of)
        released, amount = released + count, amount + total
    return Released(released=released, amount=amount)


@transaction.atomic(durable=True)
def _release_wallet(*, app_id: int, wallet_id: int, as_of: datetime) -> tuple[int, Decimal]:
    wallet = locked_wallets().select_related("card").get(app_id=app_id, pk=wallet_id)
    released = wallet_release_due(wallet=wallet, card=wallet.card, as_of=as_of)
    return len(released), sum((entry.amount for entry in released), start=ZERO)

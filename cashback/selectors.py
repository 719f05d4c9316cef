from collections.abc import Mapping
from decimal import Decimal

from django.db.models import QuerySet

from apps_auth.models import App
from cards.models import Card
from cashback.filters import LedgerEntryFilter
from cashback.models import LedgerEntry, Wallet
from config.api.errors import InvalidInput
from members.models import Member


def wallet_balance(*, app: App, card: Card, member: Member) -> Decimal:
    """The member's balance on the card: 0 when the member has no wallet there yet."""
    balance = Wallet.objects.filter(app=app, card=card, member=member).values_list(
        "balance", flat=True
    )
    return next(iter(balance), Decimal(0))


def entry_history(
    *, app: App, card: Card, member: Member, filters: Mapping
) -> QuerySet[LedgerEntry]:
    """The member's entries on the card, newest first, narrowed by `type`, `created_after` and
    `created_before`. Raises `InvalidInput` for a filter value it cannot read."""
    wallet_id = Wallet.objects.filter(app=app, card=card, member=member).values_list(
        "pk", flat=True
    )
    entries = LedgerEntry.objects.filter(app=app, wallet_id__in=wallet_id).order_by(
        "-created_at", "-id"
    )
    filterset = LedgerEntryFilter(data=filters, queryset=entries)
    if not filterset.is_valid():
        raise InvalidInput(
            details={field: list(messages) for field, messages in filterset.errors.items()}
        )
    return filterset.qs

from collections.abc import Mapping
from decimal import Decimal

from django.db.models import QuerySet

from apps_auth.models import App
from cards.models import Card
from cashback.filters import LedgerEntryFilter
from cashback.models import LedgerEntry
from config.api.errors import InvalidInput, NotFound

# One round trip for the hot read path; written as SQL because the ORM spends longer composing
# the two subqueries than PostgreSQL spends running them.
_CARD_FOR_MEMBER = """
    SELECT c.*,
        EXISTS (SELECT 1 FROM members_member m WHERE m.id = %s AND m.app_id = %s) AS member_found,
        w.id AS member_wallet_id,
        w.balance AS member_balance,
        w.entries_count AS member_entries_count
    FROM cards_card c
    LEFT JOIN cashback_wallet w ON w.card_id = c.id AND w.member_id = %s AND w.app_id = %s
    WHERE c.id = %s AND c.app_id = %s
"""
_BALANCE_PLACES = Decimal("0.0001")


def card_for_member(*, app: App, card_id: int, member_id: int) -> Card:
    """The app's card, with the app's member's `member_wallet_id` and `member_balance` on it
    (None: no wallet yet), in one query. Raises `NotFound` for a card or member that is not
    the app's."""
    params = [member_id, app.pk, member_id, app.pk, card_id, app.pk]
    card = next(iter(Card.objects.raw(_CARD_FOR_MEMBER, params)), None)
    if card is None:
        raise NotFound("Card not found.")
    if not card.member_found:
        raise NotFound("Member not found.")
    if card.member_balance is not None:
        # SQLite hands the column back as a float; PostgreSQL as a Decimal already.
        card.member_balance = Decimal(str(card.member_balance)).quantize(_BALANCE_PLACES)
    return card


def wallet_balance(*, app: App, card_id: int, member_id: int) -> tuple[Card, Decimal]:
    """The card and the member's balance on it (0 without a wallet yet); one query, O(1)."""
    card = card_for_member(app=app, card_id=card_id, member_id=member_id)
    return card, card.member_balance if card.member_balance is not None else Decimal(0)


def entry_history(*, wallet_id: int | None, filters: Mapping) -> tuple[QuerySet[LedgerEntry], bool]:
    """A wallet's entries, newest first (the (wallet, created_at, id) index), narrowed by
    `type`, `created_after` and `created_before`; none without a wallet. The wallet comes from
    `card_for_member`, which is tenant-checked. Also says whether a filter applies (without
    one, the wallet's `entries_count` is the total). Raises `InvalidInput` for a filter it
    cannot read."""
    entries = (
        LedgerEntry.objects.filter(wallet_id=wallet_id).order_by("-created_at", "-id")
        if wallet_id is not None
        else LedgerEntry.objects.none()
    )
    if not any(name in filters for name in LedgerEntryFilter.base_filters):
        return entries, False  # the common page needs no filter form
    filterset = LedgerEntryFilter(data=filters, queryset=entries)
    if not filterset.is_valid():
        raise InvalidInput(
            details={field: list(messages) for field, messages in filterset.errors.items()}
        )
    return filterset.qs, True

from collections.abc import Mapping
from decimal import Decimal

from apps_auth.models import App
from cards.models import Card
from cashback.filters import LedgerEntryFilter
from cashback.models import LedgerEntry
from config import sql
from config.api.errors import InvalidInput, NotFound

# One round trip for the hot read path: the card, whether the member is the app's, and the
# member's wallet on it.
_MEMBER_WALLET = {
    "extra": {
        "member_found": "EXISTS (SELECT 1 FROM members_member m WHERE m.id = %s AND m.app_id = %s)",
        "member_wallet_id": "w.id",
        "member_balance": "w.balance",
        "member_entries_count": "w.entries_count",
    },
    "joins": "LEFT JOIN cashback_wallet w "
    "ON w.card_id = cards_card.id AND w.member_id = %s AND w.app_id = %s",
}
_BALANCE_PLACES = Decimal("0.0001")


def card_for_member(*, app: App, card_id: int, member_id: int) -> Card:
    """The app's card, with the app's member's `member_wallet_id` and `member_balance` on it
    (None: no wallet yet), in one query. Raises `NotFound` for a card or member that is not
    the app's."""
    params = [member_id, app.pk, member_id, app.pk, card_id, app.pk]
    card = sql.select_one(
        Card, "cards_card.id = %s AND cards_card.app_id = %s", params, **_MEMBER_WALLET
    )
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


# The page's ids come from the (wallet, created_at, id) index alone (an index-only scan,
# however deep the offset), then only the page's rows are read.
_PAGE = (
    "cashback_ledgerentry.id IN (SELECT id FROM cashback_ledgerentry WHERE wallet_id = %s "
    "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s)"
)


def entry_history(
    *, card: Card, filters: Mapping, limit: int, offset: int
) -> tuple[list[LedgerEntry], int]:
    """One page of the member's entries on the card, newest first, and how many there are in
    all; `card` comes from `card_for_member`, which is tenant-checked. Narrowed by `type`,
    `created_after` and `created_before`; without a filter the wallet's `entries_count` is the
    total. Raises `InvalidInput` for a filter it cannot read."""
    wallet_id = card.member_wallet_id
    if not any(name in filters for name in LedgerEntryFilter.base_filters):
        if wallet_id is None:
            return [], 0
        page = sql.select(
            LedgerEntry,
            _PAGE,
            [wallet_id, limit, offset],
            tail="ORDER BY cashback_ledgerentry.created_at DESC, cashback_ledgerentry.id DESC",
        )
        return page, card.member_entries_count
    entries = LedgerEntry.objects.filter(wallet_id=wallet_id).order_by("-created_at", "-id")
    if wallet_id is None:
        entries = entries.none()
    filterset = LedgerEntryFilter(data=filters, queryset=entries)
    if not filterset.is_valid():
        raise InvalidInput(
            details={field: list(messages) for field, messages in filterset.errors.items()}
        )
    return list(filterset.qs[offset : offset + limit]), filterset.qs.count()

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, F, FilteredRelation, Q
from django.http import QueryDict

from apps_auth.models import App
from cards.models import Card
from cashback.filters import LedgerEntryFilter
from cashback.models import LedgerEntry
from core.errors import InvalidInput, NotFound
from members.models import Member

NEWEST_FIRST = ("-created_at", "-id")


@dataclass(frozen=True)
class MemberCard:
    """An app's card and one of its members' wallet on it (`wallet_id` None: none yet)."""

    card: Card
    member_id: int
    wallet_id: int | None
    balance: Decimal
    entries_count: int


@dataclass(frozen=True)
class HistoryPage:
    entries: list[LedgerEntry]
    total: int


def member_card(*, app: App, card_id: int, member_id: int) -> MemberCard:
    """The app's card with the app's member's wallet on it, in one query: the card, whether the
    member is the app's, and the wallet (a LEFT JOIN). Raises `NotFound` for a card or a member
    that is not the app's."""
    card = (
        Card.objects.filter(pk=card_id, app=app)
        .annotate(
            member_found=Exists(Member.objects.filter(pk=member_id, app=app)),
            wallet=FilteredRelation(
                "wallets", condition=Q(wallets__member_id=member_id, wallets__app=app)
            ),
            wallet_pk=F("wallet__id"),
            wallet_balance=F("wallet__balance"),
            wallet_entries=F("wallet__entries_count"),
        )
        .first()
    )
    if card is None:
        raise NotFound("Card not found.")
    if not card.member_found:
        raise NotFound("Member not found.")
    has_wallet = card.wallet_pk is not None
    return MemberCard(
        card=card,
        member_id=member_id,
        wallet_id=card.wallet_pk,
        balance=card.wallet_balance if has_wallet else Decimal(0),
        entries_count=card.wallet_entries if has_wallet else 0,
    )


def entry_history(
    *, member_card: MemberCard, filters: QueryDict, limit: int, offset: int
) -> HistoryPage:
    """One page of the member's entries on the card, newest first, and how many there are in
    all. Narrowed by `type`, `created_after` and `created_before`; without a filter the
    wallet's `entries_count` is the total and the page's ids come from the
    (wallet, created_at, id) index alone, an index-only scan however deep the offset, before
    only the page's rows are read. Raises `InvalidInput` for a filter it cannot read."""
    if member_card.wallet_id is None:
        entries = LedgerEntry.objects.none()
    else:
        entries = LedgerEntry.objects.filter(wallet_id=member_card.wallet_id)
    entries = entries.order_by(*NEWEST_FIRST)
    if any(name in filters for name in LedgerEntryFilter.base_filters):
        filterset = LedgerEntryFilter(data=filters, queryset=entries)
        if not filterset.is_valid():
            raise InvalidInput(
                details={field: list(messages) for field, messages in filterset.errors.items()}
            )
        return HistoryPage(
            entries=list(filterset.qs[offset : offset + limit]), total=filterset.qs.count()
        )
    page_ids = entries.values("id")[offset : offset + limit]
    page = LedgerEntry.objects.filter(id__in=page_ids).order_by(*NEWEST_FIRST)
    return HistoryPage(entries=list(page), total=member_card.entries_count)

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.http import QueryDict
from django.utils import timezone

from apps_auth.models import App
from cards.models import Card
from cashback.filters import LedgerEntryFilter
from cashback.models import EntryType, LedgerEntry
from cashback.queries import MEMBER_CARD, UPCOMING_EXPIRIES
from cashback.serializers import timestamp
from core import money
from core.errors import InvalidInput, NotFound
from core.replicas import replica_read
from core.rows import from_row, prepared_cursor
from members.services import MemberRef, member_resolve
from programme.services import card_programme, member_tier_get


def member_key(*, app_id: int, member_id: int) -> str:
    """How the read-your-writes window names a member (`core.replicas`)."""
    return f"{app_id}:{member_id}"


@dataclass(frozen=True)
class MemberCard:
    """An app's card and one of its members' wallet on it (`wallet_id` None: none yet)."""

    card: Card
    member_id: int
    wallet_id: int | None
    balance: Decimal
    pending_balance: Decimal
    entries_count: int
    # The wallet's spendable cashback to expire, by instant, the soonest `UPCOMING_EXPIRIES`
    # first: (amount, expires_at), the amounts of the lots that expire at one instant added
    # up; the wallet's `inactive_at` is the instant all that does not expire before it does.
    upcoming_expiries: list[tuple[Decimal, datetime]]
    # The first of them.
    next_expiry: tuple[Decimal, datetime] | None
    # The database it was read on (a replica, or the primary): history reads on the same one.
    using: str = "default"


@dataclass(frozen=True)
class HistoryPage:
    entries: list[LedgerEntry]
    total: int


def member_card(*, app: App, card_id: int, member_ref: MemberRef) -> MemberCard:
    """The app's card with the wallet on it of the app's member `member_ref` names, in one
    round trip by member id (one more by email or phone, to find the member on the primary).
    Raises `NotFound` for a card or a member that is not the app's, and `MemberConflict`.

    Balance and history start here, on a replica when one may serve the member
    (`core.replicas`). The statement is written out (`cashback.queries.MEMBER_CARD`) because
    composing it with the ORM costs a worker more CPU than the rest of a balance request.
    """

    member_id = member_ref.member_id
    if member_id is None:
        member_id = member_resolve(app=app, ref=member_ref).pk

    now = timezone.now()

    def read(using: str) -> tuple[str, tuple | None]:
        with prepared_cursor(using) as cursor:
            params: dict[str, Any] = {
                "card": card_id,
                "member": member_id,
                "app": app.pk,
                "now": now,
            }
            cursor.execute(MEMBER_CARD, params)
            return using, cursor.fetchone()

    using, row = replica_read(read, member_key=member_key(app_id=app.pk, member_id=member_id))
    if row is None:
        raise NotFound("Card not found.")
    *card_columns, wallet_id, balance, pending, entries_count, inactive_at, found = row[:-6]
    expired, due, due_expired, ats, amounts, inactive_amount = row[-6:]
    if not found:
        raise NotFound("Member not found.")
    upcoming: dict[datetime, Decimal] = {}
    if wallet_id is None:
        balance = pending = Decimal(0)
    elif inactive_at is not None and inactive_at <= now:
        # No earning for the card's inactivity days: all that is spendable is gone, what is
        # due with it, as for an operation (`wallet_settle`). Held cashback not yet due stays.
        balance, pending = Decimal(0), pending - due
    else:
        # As of now, not as of the worker's last pass: what expired is gone, what is due is
        # spendable (unless it is past its expiry too), as for an operation (`wallet_settle`).
        balance, pending = balance - expired + due - due_expired, pending - due
        for at, amount in zip(ats or [], amounts or [], strict=True):
            upcoming[at] = upcoming.get(at, Decimal(0)) + amount
        if inactive_amount:
            upcoming[inactive_at] = inactive_amount
    upcoming_expiries = [(amount, at) for at, amount in sorted(upcoming.items())]
    upcoming_expiries = upcoming_expiries[:UPCOMING_EXPIRIES]
    return MemberCard(
        card=from_row(Card, card_columns, using),
        member_id=member_id,
        wallet_id=wallet_id,
        balance=balance,
        pending_balance=pending,
        entries_count=0 if wallet_id is None else entries_count,
        next_expiry=upcoming_expiries[0] if upcoming_expiries else None,
        upcoming_expiries=upcoming_expiries,
        using=using,
    )


def entry_history(
    *, member_card: MemberCard, filters: QueryDict, limit: int, offset: int
) -> HistoryPage:
    """One page of the member's entries on the card, newest first, and how many there are in
    all, narrowed by `type`, `created_after` and `created_before`: a few index lookups whatever
    the filters and the offset (`LedgerEntry.objects.history_page`). Raises `InvalidInput` for a
    filter it cannot read."""
    narrowing: dict[str, Any] = {}
    # Most pages are not narrowed; the filter set (a form, its fields copied) reads those that are.
    if any(name in filters for name in LedgerEntryFilter.base_filters):
        filterset = LedgerEntryFilter(data=filters, queryset=LedgerEntry.objects.none())
        if not filterset.is_valid():
            raise InvalidInput(
                details={field: list(messages) for field, messages in filterset.errors.items()}
            )
        narrowing = filterset.form.cleaned_data
    if member_card.wallet_id is None:
        return HistoryPage(entries=[], total=0)
    wallet_id = member_card.wallet_id
    entries, total = replica_read(
        lambda using: LedgerEntry.objects.db_manager(using).history_page(
            app_id=member_card.card.app_id,
            wallet_id=wallet_id,
            entries_count=member_card.entries_count,
            limit=limit,
            offset=offset,
            entry_type=narrowing.get("type") or None,
            created_after=narrowing.get("created_after"),
            created_before=narrowing.get("created_before"),
        ),
        using=member_card.using,
    )
    return HistoryPage(entries=entries, total=total)


def qualifying_spend(*, wallet_id: int | None, card: Card, at: datetime) -> Decimal:
    """The member's qualifying spend on the card at `at`: the purchases of its earnings in the
    last `tier_period_days`, minus what refunds gave back of them (a refund naming an earning
    counts against it; one naming none, made in the period, against the period). One query on
    the wallet's entries of the period (`entry_wallet_type_history`)."""
    if wallet_id is None:
        return Decimal(0)
    since = at - timedelta(days=card.tier_period_days)
    entries = LedgerEntry.objects.filter(app_id=card.app_id, wallet_id=wallet_id)
    earnings = entries.filter(entry_type=EntryType.EARNING, created_at__gt=since)
    refunds = entries.filter(entry_type=EntryType.REFUND).filter(
        Q(original_entry__in=earnings.values("pk"))
        | Q(original_entry__isnull=True, created_at__gt=since)
    )
    purchased = earnings.aggregate(total=Sum("purchase_amount", default=Decimal(0)))["total"]
    refunded = refunds.aggregate(total=Sum("refund_amount", default=Decimal(0)))["total"]
    return max(purchased - refunded, Decimal(0))


def tier_status(*, card: Card, member_id: int, wallet_id: int | None, at: datetime) -> dict | None:
    """The member's tier on the card as balance answers it: its name and percentage, the
    qualifying spend, the next tier and the spend still needed for it, and until when the tier
    is kept whatever the spend; None when the card has no tiers or the member reached none."""
    programme = card_programme(card)
    if not programme.tiers:
        return None
    row = member_tier_get(card=card, member_id=member_id)
    tier = programme.member_tier(None if row is None else row.tier_id)
    if tier is None:
        return None
    spend = qualifying_spend(wallet_id=wallet_id, card=card, at=at)
    above = [t for t in programme.tiers if t.threshold > tier.threshold]
    following = above[0] if above else None
    return {
        "name": tier.name,
        "cashback_percentage": money.plain(tier.cashback_percentage),
        "qualifying_spend": money.quantize(spend, card.currency),
        "next_tier": None if following is None else following.name,
        "spend_to_next": None
        if following is None
        else money.quantize(max(following.threshold - spend, Decimal(0)), card.currency),
        "retained_until": None
        if row is None or row.tier_id is None or row.retained_until is None
        else timestamp(row.retained_until),
    }

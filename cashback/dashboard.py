"""The back office dashboard, the admin's home page for staff with `view_dashboard`: each
figure one aggregate query (nothing loads rows to add them up in Python), amounts per currency
(never added across currencies), charts drawn on the server (`cashback.charts`)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DateField, DecimalField, F, Min, Q, Sum, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from cards.models import Card
from cashback.charts import Series, bar_chart, line_chart
from cashback.models import EntryType, LedgerEntry, Lot, Wallet
from core import money
from programme.models import EarningRule, Tier
from programme.services import rule_uses
from webhooks.models import DeliveryStatus, WebhookDelivery

ZERO = Decimal(0)


@dataclass(frozen=True)
class CardTotals:
    card: Card
    members: int
    earned: Decimal
    redeemed: Decimal
    refunded: Decimal
    adjusted: Decimal
    reversed: Decimal
    expired: Decimal
    pending: Decimal
    liability: Decimal


def _sum(entry_type: str) -> Sum:
    """What entries of the type moved, spendable and pending together."""
    return Sum(F("amount") + F("pending_amount"), filter=Q(entry_type=entry_type), default=ZERO)


def dashboard_card_totals() -> list[CardTotals]:
    """Per card, each in the card's currency's minor unit: cashback earned (held or not),
    redeemed, given back by reversals, refunded, adjusted and expired; what members hold
    pending; and what is owed, their spendable balances. Liability and pending are what the
    flows leave: earned − redeemed + reversed − refunded + adjusted − expired."""
    flows: dict[int, dict[str, Any]] = {
        row["card"]: dict(row)
        for row in LedgerEntry.objects.values("card").annotate(
            earned=_sum(EntryType.EARNING),
            redeemed=_sum(EntryType.REDEMPTION),
            refunded=_sum(EntryType.REFUND),
            adjusted=_sum(EntryType.ADJUSTMENT),
            reversed=_sum(EntryType.REVERSAL),
            expired=_sum(EntryType.EXPIRATION),
        )
    }
    wallets: dict[int, dict[str, Any]] = {
        row["card"]: dict(row)
        for row in Wallet.objects.values("card").annotate(
            members=Count("member", distinct=True),
            liability=Sum("balance", default=ZERO),
            pending=Sum("pending_balance", default=ZERO),
        )
    }
    totals = []
    for card in Card.objects.select_related("app").order_by("app__name", "name"):
        flow = flows.get(card.pk, {})
        held = wallets.get(card.pk, {})
        amounts = {
            "earned": flow.get("earned", ZERO),
            "redeemed": -flow.get("redeemed", ZERO),
            "refunded": -flow.get("refunded", ZERO),
            "adjusted": flow.get("adjusted", ZERO),
            "reversed": flow.get("reversed", ZERO),
            "expired": -flow.get("expired", ZERO),
            "pending": held.get("pending", ZERO),
            "liability": held.get("liability", ZERO),
        }
        totals.append(
            CardTotals(
                card=card,
                members=held.get("members", 0),
                **{name: money.quantize(value, card.currency) for name, value in amounts.items()},
            )
        )
    return totals


DAYS = 30
# The most campaigns the dashboard lists (the rules' admin lists them all).
CAMPAIGNS_SHOWN = 50
EARNED, REDEEMED, EXPIRING = "#2e7d32", "#c62828", "#ef6c00"
LIABILITY, PENDING = "#1565c0", "#9e9e9e"


@dataclass(frozen=True)
class Day:
    """One day (in the site's time zone) in one currency: cashback earned (held or not) and
    redeemed that day, and what members held at its end, spendable and pending."""

    day: date
    earned: Decimal
    redeemed: Decimal
    liability: Decimal
    pending: Decimal


@dataclass(frozen=True)
class CurrencyFigures:
    currency: str
    wallets: int
    liability: Decimal  # now: the wallets' spendable balances
    pending: Decimal  # now: the wallets' pending balances
    earned: Decimal  # over the last DAYS days
    redeemed: Decimal
    days: list[Day]
    expiring: Decimal  # in the next DAYS days
    expiring_days: list[tuple[date, Decimal]]

    @property
    def flows_chart(self) -> str:
        return bar_chart(
            label=f"Cashback earned and redeemed per day, last {DAYS} days ({self.currency})",
            days=[d.day for d in self.days],
            series=[
                Series("earned", EARNED, [d.earned for d in self.days]),
                Series("redeemed", REDEEMED, [d.redeemed for d in self.days]),
            ],
            unit=self.currency,
        )

    @property
    def liability_chart(self) -> str:
        return line_chart(
            label=f"Outstanding liability at the end of each day ({self.currency})",
            days=[d.day for d in self.days],
            series=[
                Series("spendable", LIABILITY, [d.liability for d in self.days]),
                Series("pending", PENDING, [d.pending for d in self.days]),
            ],
            unit=self.currency,
        )

    @property
    def expiring_chart(self) -> str:
        return bar_chart(
            label=f"Cashback expiring per day, next {DAYS} days ({self.currency})",
            days=[day for day, _ in self.expiring_days],
            series=[Series("expiring", EXPIRING, [amount for _, amount in self.expiring_days])],
            unit=self.currency,
        )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def dashboard_currencies(*, now: datetime | None = None, days: int = DAYS) -> list[CurrencyFigures]:
    """Per currency in use, from two statements.

    Flows and liability: one UNION, so one snapshot of the database: the wallets' balances now,
    and per day since the first day shown the entries' sums. A wallet's balance is the sum of
    its entries, so what all wallets held at the end of a day is what they hold now less what
    the entries since moved: no scan of the whole ledger, no per-wallet lookups.

    Expiring: the lots with something left whose `expires_at` falls in the next `days` days,
    summed per day (the lots' `lot_expiring` index)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    shown = [today - timedelta(days=days - 1 - i) for i in range(days)]
    amount = DecimalField(max_digits=20, decimal_places=4)
    entries = (
        LedgerEntry.objects.filter(created_at__gte=_day_start(shown[0]))
        .annotate(currency=F("card__currency"), day=TruncDate("created_at"))
        .values("currency", "day")
        .annotate(
            wallets=Value(0),
            earned=_sum(EntryType.EARNING),
            redeemed=_sum(EntryType.REDEMPTION),
            spendable=Sum("amount"),
            held=Sum("pending_amount"),
        )
        .order_by()
    )
    wallets = (
        Wallet.objects.annotate(currency=F("card__currency"), day=Value(None, DateField()))
        .values("currency", "day")
        .annotate(
            wallets=Count("id"),
            earned=Value(ZERO, amount),
            redeemed=Value(ZERO, amount),
            spendable=Sum("balance"),
            held=Sum("pending_balance"),
        )
        .order_by()
    )
    now_held: dict[str, dict[str, Any]] = {}
    moved: dict[str, dict[date, dict[str, Any]]] = defaultdict(dict)
    for flow in entries.union(wallets, all=True):
        if flow["day"] is None:
            now_held[flow["currency"]] = dict(flow)
        else:
            moved[flow["currency"]][flow["day"]] = dict(flow)

    horizon = now + timedelta(days=days)
    expiring: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for due in (
        Lot.objects.filter(remaining__gt=0, expires_at__gt=now, expires_at__lte=horizon)
        .annotate(currency=F("wallet__card__currency"), day=TruncDate("expires_at"))
        .values("currency", "day")
        .annotate(amount=Sum("remaining"))
        .order_by()
    ):
        expiring[due["currency"]][due["day"]] = due["amount"]
    ahead = [
        today + timedelta(days=i) for i in range((timezone.localdate(horizon) - today).days + 1)
    ]

    figures = []
    for currency in sorted(now_held.keys() | moved.keys()):
        held = now_held.get(currency, {})
        by_day = moved[currency]
        spendable = held.get("spendable") or ZERO
        pending = held.get("held") or ZERO
        # Walked back from now: first what entries dated after today moved (a clock ahead).
        for day, later in by_day.items():
            if day > today:
                spendable -= later["spendable"]
                pending -= later["held"]
        series = []
        for day in reversed(shown):
            row: dict[str, Any] = by_day.get(day, {})
            series.append(
                Day(
                    day=day,
                    earned=money.quantize(row.get("earned", ZERO), currency),
                    redeemed=-money.quantize(row.get("redeemed", ZERO), currency),
                    liability=money.quantize(spendable, currency),
                    pending=money.quantize(pending, currency),
                )
            )
            spendable -= row.get("spendable", ZERO)
            pending -= row.get("held", ZERO)
        series.reverse()
        upcoming = [
            (day, money.quantize(expiring[currency].get(day, ZERO), currency)) for day in ahead
        ]
        figures.append(
            CurrencyFigures(
                currency=currency,
                wallets=held.get("wallets", 0),
                liability=money.quantize(held.get("spendable") or ZERO, currency),
                pending=money.quantize(held.get("held") or ZERO, currency),
                earned=sum((d.earned for d in series), ZERO),
                redeemed=sum((d.redeemed for d in series), ZERO),
                days=series,
                expiring=sum((amount for _, amount in upcoming), ZERO),
                expiring_days=upcoming,
            )
        )
    return figures


@dataclass(frozen=True)
class Campaign:
    rule: EarningRule
    currency: str
    budget: Decimal
    spent: Decimal
    remaining: Decimal
    used_percent: int
    uses: int


def dashboard_campaigns(*, limit: int = CAMPAIGNS_SHOWN) -> tuple[list[Campaign], int]:
    """The active rules with a budget, the most spent first (as a share of the budget), at
    most `limit` of them, and how many there are in all."""
    rules = EarningRule.objects.filter(active=True, budget__isnull=False, budget__gt=0)
    shown = list(
        rules.select_related("card").order_by(
            (F("budget_spent") / F("budget")).desc(), "priority", "id"
        )[:limit]
    )
    uses = rule_uses(shown)
    campaigns = []
    for rule in shown:
        currency = rule.card.currency
        budget = rule.budget or ZERO
        campaigns.append(
            Campaign(
                rule=rule,
                currency=currency,
                budget=money.quantize(budget, currency),
                spent=money.quantize(rule.budget_spent, currency),
                remaining=money.quantize(budget - rule.budget_spent, currency),
                used_percent=int(rule.budget_spent * 100 / budget),
                uses=uses.get(rule.pk, 0),
            )
        )
    total = len(campaigns) if len(campaigns) < limit else rules.count()
    return campaigns, total


@dataclass(frozen=True)
class TierCount:
    tier: Tier
    members: int
    share_percent: int  # of the card's members with a tier


def dashboard_tiers() -> list[tuple[Card, list[TierCount]]]:
    """Per card with tiers, each tier (lowest first) and how many members are in it now."""
    tiers = (
        Tier.objects.select_related("card", "card__app")
        .annotate(member_count=Count("members"))
        .order_by("card__app__name", "card__name", "card_id", "threshold")
    )
    cards: dict[int, tuple[Card, list[Tier]]] = {}
    for tier in tiers:
        cards.setdefault(tier.card_id, (tier.card, []))[1].append(tier)
    shown = []
    for card, card_tiers in cards.values():
        total = sum(tier.member_count for tier in card_tiers) or 1  # type: ignore[attr-defined]
        shown.append(
            (
                card,
                [
                    TierCount(
                        tier=tier,
                        members=tier.member_count,  # type: ignore[attr-defined]
                        share_percent=round(tier.member_count * 100 / total),  # type: ignore[attr-defined]
                    )
                    for tier in card_tiers
                ],
            )
        )
    return shown


@dataclass(frozen=True)
class WebhookHealth:
    delivered: int  # of the deliveries created in the last 24 hours
    pending: int
    failed: int
    backlog: int  # every delivery still pending, however old
    oldest_pending_at: datetime | None

    @property
    def oldest_pending_age(self) -> timedelta | None:
        return None if self.oldest_pending_at is None else timezone.now() - self.oldest_pending_at


def dashboard_webhooks(*, now: datetime | None = None) -> WebhookHealth:
    """Deliveries of the last 24 hours by status, and the whole backlog: one aggregate."""
    since = (now or timezone.now()) - timedelta(hours=24)
    recent = Q(created_at__gte=since)
    pending = Q(status=DeliveryStatus.PENDING)
    figures = WebhookDelivery.objects.filter(recent | pending).aggregate(
        delivered=Count("id", filter=recent & Q(status=DeliveryStatus.DELIVERED)),
        pending=Count("id", filter=recent & pending),
        failed=Count("id", filter=recent & Q(status=DeliveryStatus.FAILED)),
        backlog=Count("id", filter=pending),
        oldest_pending_at=Min("created_at", filter=pending),
    )
    return WebhookHealth(**figures)


def dashboard_context() -> dict[str, Any]:
    """Everything the dashboard shows."""
    campaigns, campaigns_total = dashboard_campaigns()
    return {
        "currencies": dashboard_currencies(),
        "campaigns": campaigns,
        "campaigns_total": campaigns_total,
        "tiers": dashboard_tiers(),
        "webhooks": dashboard_webhooks(),
        "totals": dashboard_card_totals(),
        "days": DAYS,
    }

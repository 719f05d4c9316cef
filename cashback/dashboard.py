"""The back office dashboard: per-card totals and a 30-day chart drawn on the server as SVG."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from cards.models import Card
from cashback.models import EntryType, LedgerEntry, Wallet
from core import money

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


def dashboard_daily(*, currency: str, days: int = 30) -> list[tuple[date, Decimal, Decimal]]:
    """(day, earned, redeemed) in one currency for each of the last `days` days, today included."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        LedgerEntry.objects.filter(
            created_at__date__gte=start,
            card__currency=currency,
            entry_type__in=[EntryType.EARNING, EntryType.REDEMPTION],
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "entry_type")
        .annotate(total=Sum(F("amount") + F("pending_amount")))
    )
    by_day = {
        (row["day"], row["entry_type"]): money.quantize(row["total"], currency) for row in rows
    }
    return [
        (
            day,
            by_day.get((day, EntryType.EARNING), ZERO),
            -by_day.get((day, EntryType.REDEMPTION), ZERO),
        )
        for day in (start + timedelta(days=i) for i in range(days))
    ]


def daily_chart_svg(series: list[tuple[date, Decimal, Decimal]]) -> str:
    """Paired bars, earned and redeemed per day, with the highest value marked on the axis."""
    width, height, pad = 720, 220, 32
    top = max([max(earned, redeemed) for _, earned, redeemed in series] + [Decimal(1)])
    slot = (width - 2 * pad) / len(series)
    bar = slot * 0.38

    def scaled(value: Decimal) -> float:
        return float(value / top) * (height - 2 * pad)

    bars = []
    for i, (day, earned, redeemed) in enumerate(series):
        x = pad + i * slot
        for offset, value, colour, label in (
            (0, earned, "#2e7d32", "earned"),
            (bar, redeemed, "#c62828", "redeemed"),
        ):
            h = scaled(value)
            geometry = (f"{n:.1f}" for n in (x + offset, height - pad - h, bar, h))
            bars.append((*geometry, colour, f"{day:%d %b}: {value} {label}"))
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        bars,
    )
    first, last = series[0][0], series[-1][0]
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {w} {h}" width="{w}" '
        'height="{h}" aria-label="Cashback earned and redeemed per day, last 30 days">'
        '<line x1="{p}" y1="{base}" x2="{right}" y2="{base}" stroke="#999"/>'
        '<text x="2" y="{p}" font-size="11">{top}</text>'
        '<text x="{p}" y="{label_y}" font-size="11">{first}</text>'
        '<text x="{right}" y="{label_y}" font-size="11" text-anchor="end">{last}</text>'
        "{rects}"
        '<text x="{right}" y="14" font-size="11" text-anchor="end" fill="#2e7d32">earned</text>'
        '<text x="{right}" y="28" font-size="11" text-anchor="end" fill="#c62828">redeemed</text>'
        "</svg>",
        w=width,
        h=height,
        p=pad,
        base=height - pad,
        right=width - pad,
        label_y=height - 10,
        top=top,
        first=f"{first:%d %b}",
        last=f"{last:%d %b}",
        rects=rects,
    )

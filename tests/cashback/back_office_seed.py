"""A programme with some history, for the back office's pages and their screenshots: earnings
and redemptions over the last days in two currencies, a campaign with a budget, tiers with
members, webhook deliveries in each state and a member whose PIN is locked."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps_auth.models import App
from cards.models import Card
from cashback.models import LedgerEntry, Lot
from cashback.services import cashback_redeem
from members.models import Member
from programme.models import EarningRule, MemberTier, RuleKind, RuleUse, Tier, TierReason
from programme.services import EVER
from tests.factories import CardFactory, MemberFactory
from tests.helpers import give_balance
from webhooks.models import (
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

# (days ago, member index, purchase) per earning on the dinar card; 5 % of each is earned.
EARNINGS = [
    (12, 0, "200"),
    (10, 1, "120"),
    (9, 0, "80"),
    (7, 2, "300"),
    (6, 1, "60"),
    (4, 0, "150"),
    (3, 3, "90"),
    (1, 2, "240"),
    (0, 0, "100"),
]
# (days ago, member index, amount) per redemption on the dinar card.
REDEMPTIONS = [(8, 0, "6"), (5, 2, "10"), (2, 1, "3.5")]


@dataclass
class Seeded:
    card: Card
    euro_card: Card
    members: list[Member]
    rule: EarningRule
    tiers: list[Tier]


EXPIRY_DAYS = 20


def backdate(entry: LedgerEntry, days: int) -> None:
    """Moves an entry `days` back in time, and the lot it credited with it (its wallet's
    balance is its entries' sum, whenever they were written)."""
    created_at = timezone.now() - timedelta(days=days)
    LedgerEntry.objects.filter(pk=entry.pk).update(created_at=created_at)
    Lot.objects.filter(source=entry).update(
        available_at=created_at, expires_at=created_at + timedelta(days=EXPIRY_DAYS)
    )


def seed_back_office(app: App) -> Seeded:
    card = CardFactory.create(
        app=app, name="Gold card", cashback_min_amount=Decimal(0), cashback_expiry_days=EXPIRY_DAYS
    )
    euro_card = CardFactory.create(
        app=app, name="Euro card", currency="EUR", cashback_min_amount=Decimal(0)
    )
    names = ["Amira Ben Salah", "Youssef Trabelsi", "Leila Haddad", "Karim Jaziri"]
    members = [
        MemberFactory.create(app=app, name=name, email=f"{name.split()[0].lower()}@example.com")
        for name in names
    ]
    # Oldest first: an entry is never dated before its wallet's previous one.
    moves: list[tuple[int, str, int, str]] = [
        *((days, "earn", who, amount) for days, who, amount in EARNINGS),
        *((days, "redeem", who, amount) for days, who, amount in REDEMPTIONS),
    ]
    for days, kind, who, amount in sorted(moves, key=lambda move: -move[0]):
        if kind == "earn":
            entry = give_balance(app=app, card=card, member=members[who], purchase=amount)
        else:
            entry = cashback_redeem(
                app=app, card=card, member_id=members[who].pk, amount=Decimal(amount)
            ).entry
        backdate(entry, days)
    give_balance(app=app, card=euro_card, member=members[0], purchase="40")  # 2.00 EUR

    rule = EarningRule.objects.create(
        app=app,
        card=card,
        name="Weekend double",
        kind=RuleKind.MULTIPLIER,
        factor=Decimal(2),
        budget=Decimal(500),
        budget_spent=Decimal("187.250"),
        days_of_week=[6, 7],
    )
    coffee = EarningRule.objects.create(
        app=app,
        card=card,
        name="Coffee bonus",
        kind=RuleKind.BONUS_PERCENTAGE,
        percentage=Decimal(3),
        budget=Decimal(200),
        budget_spent=Decimal(180),
        categories=["coffee"],
    )
    for applied, uses in ((rule, 41), (coffee, 120)):
        RuleUse.objects.create(
            app=app, rule=applied, member=members[0], per="ever", period_start=EVER, uses=uses
        )
    tiers = [
        Tier.objects.create(
            app=app, card=card, name=name, threshold=Decimal(threshold), cashback_percentage=pct
        )
        for name, threshold, pct in (
            ("Silver", 100, Decimal(6)),
            ("Gold", 250, Decimal(7)),
            ("Platinum", 1000, Decimal(10)),
        )
    ]
    now = timezone.now()
    for member, tier in zip(members, [tiers[1], tiers[0], tiers[1], tiers[0]], strict=True):
        MemberTier.objects.create(
            app=app,
            card=card,
            member=member,
            tier=tier,
            reached_at=now - timedelta(days=5),
            retained_until=now + timedelta(days=360),
            reason=TierReason.UPGRADE,
        )

    endpoint = WebhookEndpoint.objects.create(
        app=app, url="https://shop.example.com/hooks/cashback", secret="whsec_seed"
    )
    for status, age in (
        (DeliveryStatus.DELIVERED, timedelta(hours=2)),
        (DeliveryStatus.DELIVERED, timedelta(hours=5)),
        (DeliveryStatus.DELIVERED, timedelta(hours=30)),  # before the last 24 hours
        (DeliveryStatus.PENDING, timedelta(minutes=40)),
        (DeliveryStatus.FAILED, timedelta(hours=3)),
    ):
        event = WebhookEvent.objects.create(
            app=app, event_type=EventType.EARNED, body="{}", created_at=now - age
        )
        WebhookDelivery.objects.create(
            app=app, event=event, endpoint=endpoint, status=status, created_at=now - age
        )

    locked = members[0]
    locked.set_pin("4321")
    locked.pin_locked_until = now + timedelta(minutes=12)
    locked.save()
    return Seeded(card=card, euro_card=euro_card, members=members, rule=rule, tiers=tiers)

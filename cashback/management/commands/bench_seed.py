import sys
import time
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps_auth.models import App
from apps_auth.services import app_create
from cards.models import Card
from cards.services import card_create
from cashback.models import Wallet
from cashback.queries import SEED_ENTRIES, SEED_LOTS
from core.commands import OperationsCommand
from members.models import Member
from programme.models import EarningRule
from programme.serializers import RuleInputSerializer
from programme.services import rule_create

STEP = Decimal("0.050")  # each seeded entry credits this much cashback


def members_with_wallets(*, app: App, card: Card, count: int) -> list[Wallet]:
    """`count` new members of the app (`seedN@example.com`, numbered after the app's members),
    each with an empty wallet on the card, bulk-inserted."""
    first = Member.objects.filter(app=app).count()
    members = Member.objects.bulk_create(
        Member(app=app, email=f"seed{first + i}@example.com") for i in range(count)
    )
    return Wallet.objects.bulk_create(
        Wallet(app=app, card=card, member=member) for member in members
    )


# A grocer's catalogue, (SKU, category): the programme card's rules name these, and the
# benchmark's baskets are drawn from them.
CATALOGUE = (
    ("COF-ARABICA-1KG", "coffee"), ("COF-ESPRESSO-250", "coffee"), ("COF-CAPS-10", "coffee"),
    ("TEA-GREEN-100", "tea"), ("TEA-MINT-50", "tea"),
    ("BAK-BAGUETTE", "bakery"), ("BAK-CROISSANT-4", "bakery"), ("BAK-CAKE-CHOC", "bakery"),
    ("DAI-MILK-1L", "dairy"), ("DAI-YOGURT-8", "dairy"), ("DAI-CHEESE-200", "dairy"),
    ("PRO-ORG-APPLES-1KG", "produce"), ("PRO-TOMATOES-1KG", "produce"),
    ("PRO-ORG-DATES-500", "produce"),
    ("FRZ-PIZZA-2", "frozen"), ("FRZ-ICECREAM-1L", "frozen"),
    ("SNK-CHIPS-150", "snacks"), ("SNK-CHOC-BAR", "snacks"),
    ("BEV-WATER-6X1L5", "beverages"), ("BEV-JUICE-1L", "beverages"),
    ("BEV-SODA-6X33", "beverages"),
    ("HOU-DETERGENT-3L", "household"), ("HOU-PAPER-12", "household"),
    ("PER-SHAMPOO-400", "personal_care"), ("PER-TOOTHPASTE", "personal_care"),
    ("BRD-OLIVE-OIL-1L", "pantry"), ("BRD-HARISSA-380", "pantry"), ("PAN-PASTA-500", "pantry"),
    ("CLR-MUG-XMAS", "clearance"), ("CLR-CANDLE-SET", "clearance"),
)  # fmt: skip


def _rules(now) -> list[dict]:
    """The programme card's 20 rules as the API's POST takes them, in the order they apply.

    The mix a grocer's marketing team runs at once, so that an earn pays for what such a
    programme asks of it: category and SKU campaigns matched against the basket, time windows
    (weekend, midweek, breakfast, happy hour, one that wraps midnight) that hold at some hours
    and not at others, a basket threshold, a multiplier, fixed bonuses, limits per member and
    period (the member's uses read, and counted, under the wallet's lock), two supplier-funded
    budgets (the rule's row locked and taken from; large enough never to run out in a run), a
    welcome bonus for the first purchase (the member's history asked), and, late in the order,
    a clearance offer and a catch-all that are not stackable: when one applies, the rules after
    it do not. Most baskets match several rules; none matches all."""
    hours = lambda start, end: {"from": f"{start:02}:00", "to": f"{end:02}:00"}  # noqa: E731
    return [
        {"name": "Welcome bonus", "kind": "fixed_bonus", "amount": "2", "priority": 1,
         "first_purchase_only": True},
        {"name": "Double cashback on coffee", "kind": "multiplier", "factor": "2",
         "priority": 10, "categories": ["coffee"]},
        {"name": "Coffee club: 1 per visit, 3 a week", "kind": "fixed_bonus", "amount": "1",
         "priority": 11, "categories": ["coffee"], "max_uses_per_member": 3, "per": "week"},
        {"name": "Tea +4 %", "kind": "bonus_percentage", "percentage": "4", "priority": 12,
         "categories": ["tea"]},
        {"name": "Weekend bakery +3 %", "kind": "bonus_percentage", "percentage": "3",
         "priority": 20, "categories": ["bakery"], "days_of_week": [6, 7]},
        {"name": "Midweek dairy +2 %", "kind": "bonus_percentage", "percentage": "2",
         "priority": 21, "categories": ["dairy"], "days_of_week": [2, 3]},
        {"name": "Breakfast 07-10 +2 %", "kind": "bonus_percentage", "percentage": "2",
         "priority": 22, "hours": hours(7, 10)},
        {"name": "Happy hour beverages +5 %", "kind": "bonus_percentage", "percentage": "5",
         "priority": 23, "categories": ["beverages"], "hours": hours(17, 20)},
        {"name": "Late-night snacks +4 %", "kind": "bonus_percentage", "percentage": "4",
         "priority": 24, "categories": ["snacks"], "hours": hours(22, 2)},
        {"name": "Organic produce +3 %", "kind": "bonus_percentage", "percentage": "3",
         "priority": 30, "skus": ["PRO-ORG-APPLES-1KG", "PRO-ORG-DATES-500"]},
        {"name": "Frozen over 20 +2 %", "kind": "bonus_percentage", "percentage": "2",
         "priority": 31, "categories": ["frozen"], "min_purchase": "20"},
        {"name": "Household triple, at most 5", "kind": "multiplier", "factor": "3",
         "priority": 32, "categories": ["household"], "max_per_transaction": "5"},
        {"name": "Personal care +5 %, twice a month", "kind": "bonus_percentage",
         "percentage": "5", "priority": 33, "categories": ["personal_care"],
         "max_uses_per_member": 2, "per": "month"},
        {"name": "Olive oil and harissa, supplier-funded +10 %", "kind": "bonus_percentage",
         "percentage": "10", "priority": 40, "skus": ["BRD-OLIVE-OIL-1L", "BRD-HARISSA-380"],
         "budget": "100000000"},
        {"name": "New espresso range, supplier-funded 0.5", "kind": "fixed_bonus",
         "amount": "0.5", "priority": 41, "skus": ["COF-ESPRESSO-250", "COF-CAPS-10"],
         "budget": "100000000"},
        {"name": "Daily visit 0.2, once a day", "kind": "fixed_bonus", "amount": "0.2",
         "priority": 50, "max_uses_per_member": 1, "per": "day"},
        {"name": "Big basket over 100: 3", "kind": "fixed_bonus", "amount": "3", "priority": 51,
         "min_purchase": "100"},
        {"name": "Season campaign +1 %", "kind": "bonus_percentage", "percentage": "1",
         "priority": 60, "starts_at": (now - timedelta(days=30)).isoformat(),
         "ends_at": (now + timedelta(days=335)).isoformat()},
        {"name": "Clearance quadruple, alone", "kind": "multiplier", "factor": "4",
         "priority": 900, "categories": ["clearance"], "stackable": False},
        {"name": "Everything else +0.5 %, alone", "kind": "bonus_percentage",
         "percentage": "0.5", "priority": 950, "stackable": False, "max_per_transaction": "2"},
    ]  # fmt: skip


PROGRAMME_CARD = "Bench programme card"


def programme_card(*, app: App) -> Card:
    """The app's card with the benchmark's programme (20 active rules, `_rules`), created with
    its rules, validated as the API's POSTs, unless the app has it."""
    card = Card.objects.filter(app=app, name=PROGRAMME_CARD).first()
    if card is not None:
        return card
    card = card_create(app=app, name=PROGRAMME_CARD, cashback_percentage=Decimal(5))
    for body in _rules(timezone.now()):
        params = RuleInputSerializer(data=body)
        params.is_valid(raise_exception=True)
        rule_create(card=card, fields=dict(params.validated_data))
    return card


class Command(OperationsCommand):
    help = (
        "Loads a large ledger for benchmarks (PostgreSQL, COPY): --hot entries on one wallet and "
        "--total in all, spread over wallets of --per-wallet entries. Balances stay consistent. "
        "Beside it, a card with a programme of 20 active earning rules."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--hot", type=int, default=1_000_000)
        parser.add_argument("--total", type=int, default=10_000_000)
        parser.add_argument("--per-wallet", type=int, default=1_000)
        parser.add_argument("--app", help="An existing app id; by default a new 'Bench seed' app.")

    def run(self, *, hot, total, per_wallet, app, **options):
        if hot > total or per_wallet < 1:
            raise CommandError("--hot must be at most --total, and --per-wallet at least 1.")
        target = App.objects.get(app_id=app) if app else app_create(
            name="Bench seed", scopes=["cashback_read", "cashback_write", "card_read"],
            rate_limit_per_minute=2_000_000_000,
        )[0]  # fmt: skip
        plain = Card.objects.filter(app=target).exclude(name=PROGRAMME_CARD)
        card = plain.first() or card_create(
            app=target, name="Seed card", cashback_percentage=Decimal(5)
        )
        programme = programme_card(app=target)
        sizes = [hot] + [per_wallet] * ((total - hot) // per_wallet)
        if (rest := (total - hot) % per_wallet) > 0:
            sizes.append(rest)
        wallets = members_with_wallets(app=target, card=card, count=len(sizes))
        started, written = time.monotonic(), 0
        start_at = timezone.now() - timedelta(days=365)
        with connection.cursor() as cursor:
            for wallet, size in zip(wallets, sizes, strict=True):
                with transaction.atomic():
                    with cursor.copy(SEED_ENTRIES) as copy:
                        balance = Decimal(0)
                        for i in range(size):
                            balance += STEP
                            copy.write_row(
                                (
                                    target.pk, wallet.pk, card.pk, "earning", "cashback_earned",
                                    STEP, balance, 0, 0, 1, 5, 0, "{}", "",
                                    start_at + timedelta(seconds=i), i + 1, i + 1,
                                )
                            )  # fmt: skip
                    # Each earning's lot, spendable since its entry and never expiring.
                    cursor.execute(SEED_LOTS, {"wallet": wallet.pk})
                Wallet.objects.filter(pk=wallet.pk).update(balance=balance, entries_count=size)
                written += size
                self._progress(written, total, started)
            # Visibility map and statistics, as autovacuum would leave them on a live database.
            cursor.execute("VACUUM (ANALYZE) cashback_ledgerentry")
            cursor.execute("VACUUM (ANALYZE) cashback_lot")
            cursor.execute("ANALYZE cashback_wallet")
            # The load's dirty pages written now, not by a checkpoint in the middle of a
            # measurement (needs a superuser or pg_checkpoint; skipped without).
            try:
                with transaction.atomic():
                    cursor.execute("CHECKPOINT")
            except DatabaseError:
                pass
        sys.stderr.write("\n")
        return {
            "app_id": target.app_id,
            "card_id": card.pk,
            "programme_card_id": programme.pk,
            "rules": EarningRule.objects.filter(app=target, card=programme, active=True).count(),
            "hot_member_id": wallets[0].member_id,
            "entries": written,
            "wallets": len(wallets),
            "seconds": round(time.monotonic() - started, 1),
        }

    @staticmethod
    def _progress(done, total, started):
        width = 40
        filled = int(width * done / total)
        rate = done / max(time.monotonic() - started, 1e-9)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} entries, {rate:,.0f}/s"
        )
        sys.stderr.flush()

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, router
from django.db.models import Q

from cards.queries import CARD_OF_APP
from core import money
from core.rows import from_row, prepared_cursor


def default_currency() -> str:
    return settings.CASHBACK_DEFAULT_CURRENCY


CURRENCY_FIXED = "The currency of a card with wallets cannot change."


def default_time_zone() -> str:
    return settings.CASHBACK_TIME_ZONE


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_time_zone(name: str) -> None:
    if name not in _time_zones():
        raise ValidationError(f"'{name}' is not an IANA time zone, e.g. Africa/Tunis.")


MONTH_DAY = re.compile(r"\d\d-\d\d")


def validate_month_day(value: str) -> None:
    """`MM-DD`, a day that every year has (02-29 is refused: most years have none)."""
    try:
        if not MONTH_DAY.fullmatch(value):
            raise ValueError(value)
        month, day = (int(part) for part in value.split("-"))
        datetime(2023, month, day)  # noqa: DTZ001  a calendar check, no instant
    except ValueError:
        raise ValidationError(f"'{value}' is not a day as MM-DD, e.g. 12-31.") from None


class ExpiryPolicy(models.TextChoices):
    ROLLING = "rolling", "Rolling: cashback_expiry_days after it is spendable"
    END_OF_MONTH = "end_of_month", "End of the month of the rolling date"
    FIXED_DATE = "fixed_date", "Each year on cashback_expiry_date"


def validate_currency(code: str) -> None:
    if not money.is_known_currency(code):
        raise ValidationError(f"'{code}' is not an ISO 4217 currency code.")


def _day_end(year: int, month: int, day: int, zone: ZoneInfo) -> datetime:
    """The instant the day ends in `zone`, in UTC: the next day's first instant there (its
    midnight; where a clock change skips midnight, the instant the day begins)."""
    following = date(year, month, day) + timedelta(days=1)
    return datetime.combine(following, time(), tzinfo=zone).astimezone(UTC)


class CardManager(models.Manager["Card"]):
    def get_of_app(self, *, app_id: int, card_id: int) -> "Card | None":
        """The app's card with this id, or None.

        Every operation reads its card first. The statement is written out, on the connection
        the router picks for reads, because composing it with the ORM costs a worker more CPU
        than the rest of an earn's reads (docs/benchmarks.md).
        """
        using = self._db or router.db_for_read(self.model)
        with prepared_cursor(using) as cursor:
            cursor.execute(CARD_OF_APP, {"card": card_id, "app": app_id})
            row = cursor.fetchone()
        return None if row is None else from_row(self.model, row, using)


class Card(models.Model):
    """A cashback card of one app: the percentage a purchase earns and its limits."""

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="cards")
    unique_identifier = models.CharField(
        max_length=64, null=True, blank=True, help_text="The merchant's own code, e.g. CASH-001."
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    reward_system = models.CharField(max_length=20, default="cashback", editable=False)
    cashback_percentage = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal(100))],
        help_text="Share of the purchase credited back, 0 < p ≤ 100.",
    )
    cashback_min_amount = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text="The smallest purchase that earns cashback.",
    )
    cashback_max_amount = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="The most cashback one purchase earns; empty for no cap.",
    )
    allows_pin_redemption = models.BooleanField(default=False)
    cashback_holding_days = models.PositiveIntegerField(
        default=0,
        help_text="Days an earning stays pending before it can be spent; 0: spendable at once.",
    )
    cashback_expiry_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Days spendable cashback lasts before it expires; empty: it never expires.",
    )
    cashback_expiry_policy = models.CharField(
        max_length=12,
        choices=ExpiryPolicy.choices,
        default=ExpiryPolicy.ROLLING,
        help_text="How a lot's expiry date is set from when it becomes spendable.",
    )
    cashback_expiry_date = models.CharField(
        max_length=5,
        null=True,
        blank=True,
        validators=[validate_month_day],
        help_text="MM-DD: the day every lot expires at the end of, under the fixed_date policy.",
    )
    cashback_inactivity_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Days without an earning on the card after which all of a member's "
        "spendable cashback on it expires; empty: never.",
    )
    tier_period_days = models.PositiveIntegerField(
        default=365,
        validators=[MinValueValidator(1)],
        help_text="Days of purchases that count toward a member's tier.",
    )
    tier_retention_days = models.PositiveIntegerField(
        default=365, help_text="Days a reached tier is kept at least."
    )
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="IANA name: rules' days and hours, calendar periods and expiry dates are "
        "read in it.",
    )
    currency = models.CharField(
        max_length=3, default=default_currency, validators=[validate_currency]
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CardManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "unique_identifier"],
                condition=Q(unique_identifier__isnull=False),
                name="card_identifier_per_app",
            ),
            models.CheckConstraint(
                condition=Q(cashback_percentage__gt=0, cashback_percentage__lte=100),
                name="card_percentage_range",
            ),
            models.CheckConstraint(condition=Q(cashback_min_amount__gte=0), name="card_min_gte_0"),
            models.CheckConstraint(
                condition=Q(cashback_max_amount__isnull=True) | Q(cashback_max_amount__gt=0),
                name="card_max_gt_0",
            ),
            models.CheckConstraint(
                condition=Q(cashback_expiry_days__isnull=True) | Q(cashback_expiry_days__gte=1),
                name="card_expiry_days_gte_1",
            ),
            models.CheckConstraint(
                condition=(
                    Q(cashback_expiry_policy="fixed_date", cashback_expiry_date__isnull=False)
                    | (
                        ~Q(cashback_expiry_policy="fixed_date")
                        & Q(cashback_expiry_date__isnull=True)
                    )
                ),
                name="card_expiry_date_iff_fixed_date",
            ),
            models.CheckConstraint(
                condition=Q(cashback_inactivity_days__isnull=True)
                | Q(cashback_inactivity_days__gte=1),
                name="card_inactivity_days_gte_1",
            ),
            models.CheckConstraint(
                condition=Q(tier_period_days__gte=1), name="card_tier_period_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unique_identifier or self.pk})"

    def clean(self) -> None:
        super().clean()
        if self.currency_change_refused():
            raise ValidationError({"currency": CURRENCY_FIXED})
        fixed = self.cashback_expiry_policy == ExpiryPolicy.FIXED_DATE
        if fixed and not self.cashback_expiry_date:
            raise ValidationError({"cashback_expiry_date": "The fixed_date policy needs a day."})
        if not fixed and self.cashback_expiry_date:
            raise ValidationError(
                {"cashback_expiry_date": "Only the fixed_date policy takes a day."}
            )

    @property
    def zone(self) -> ZoneInfo:
        """The card's time zone: rules' days and hours, calendar periods, expiry dates."""
        return ZoneInfo(self.time_zone)

    def lot_expires_at(self, available_at: datetime) -> datetime | None:
        """When a lot that becomes spendable at `available_at` expires, by the card's policy
        (None: never), in UTC. `rolling`: `cashback_expiry_days` later. `end_of_month`: the
        last instant of the month (in the card's zone) of the rolling date. `fixed_date`: the
        end of the first `cashback_expiry_date` (in the card's zone) at least
        `cashback_expiry_days` (or 0) after `available_at`. "The last instant" is the first
        instant of the next day or month: a lot expires when that instant comes.

        Days are whole days of elapsed time (24 hours, whatever the clock changes), counted in
        UTC whatever zone `available_at` is given in: aware arithmetic in a zone with daylight
        saving would count wall-clock days, an hour off across a change."""
        available_at = available_at.astimezone(UTC)
        policy = self.cashback_expiry_policy
        days = self.cashback_expiry_days
        if policy == ExpiryPolicy.FIXED_DATE and self.cashback_expiry_date:
            zone = self.zone
            earliest = available_at + timedelta(days=days or 0)
            month, day = (int(part) for part in self.cashback_expiry_date.split("-"))
            year = earliest.astimezone(zone).year
            while (end := _day_end(year, month, day, zone)) <= earliest:
                year += 1
            return end
        if days is None:
            return None
        rolling = available_at + timedelta(days=days)
        if policy == ExpiryPolicy.END_OF_MONTH:
            local = rolling.astimezone(self.zone)
            last = calendar.monthrange(local.year, local.month)[1]
            return _day_end(local.year, local.month, last, self.zone)
        return rolling

    def wallet_inactive_at(self, earned_at: datetime) -> datetime | None:
        """When a member's spendable cashback on the card expires if `earned_at` is their last
        earning on it: `cashback_inactivity_days` later (None: the card has no inactivity
        expiry)."""
        days = self.cashback_inactivity_days
        return None if days is None else earned_at.astimezone(UTC) + timedelta(days=days)

    def currency_change_refused(self) -> bool:
        """True when the card has wallets and `currency` differs from the stored one.

        Wallet balances and ledger amounts are amounts in the card's currency: another currency
        would re-read them (10.50 EUR as 11 JPY). A card without wallets may change. The
        database refuses the same change, whatever writes it (a trigger, cashback migrations).
        """
        if self._state.adding:
            return False
        stored = Card.objects.filter(pk=self.pk).values_list("currency", flat=True).first()
        return stored is not None and stored != self.currency and self.wallets.exists()

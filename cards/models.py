from decimal import Decimal
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, router
from django.db.models import Q

from core import money
from core.rows import from_row, prepared_cursor, quote, select_list


def default_currency() -> str:
    return settings.CASHBACK_DEFAULT_CURRENCY


CURRENCY_FIXED = "The currency of a card with wallets cannot change."


def validate_currency(code: str) -> None:
    if not money.is_known_currency(code):
        raise ValidationError(f"'{code}' is not an ISO 4217 currency code.")


class CardManager(models.Manager["Card"]):
    def get_of_app(self, *, app_id: int, card_id: int) -> "Card | None":
        """The app's card with this id, or None.

        Every operation reads its card first. The statement is written out, on the connection
        the router picks for reads, because composing it with the ORM costs a worker more CPU
        than the rest of an earn's reads (see the README's benchmark).
        """
        using = self._db or router.db_for_read(self.model)
        with prepared_cursor(using) as cursor:
            cursor.execute(_card_of_app_sql(), {"card": card_id, "app": app_id})
            row = cursor.fetchone()
        return None if row is None else from_row(self.model, row, using)


@cache
def _card_of_app_sql() -> str:
    meta = Card._meta
    pk, app = quote(meta.pk.column), quote(meta.get_field("app").column)
    return (
        f"SELECT {select_list(Card, 'c')} FROM {quote(meta.db_table)} c "  # noqa: S608  _meta
        f"WHERE c.{pk} = %(card)s AND c.{app} = %(app)s"
    )


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
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unique_identifier or self.pk})"

    def clean(self) -> None:
        super().clean()
        if self.currency_change_refused():
            raise ValidationError({"currency": CURRENCY_FIXED})

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

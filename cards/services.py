from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps_auth.models import App
from cards.models import Card
from cards.selectors import card_cache_clear
from core import money
from core.errors import InvalidInput
from core.generations import configuration_changed


def card_create(
    *,
    app: App,
    name: str,
    cashback_percentage: Decimal,
    unique_identifier: str | None = None,
    description: str = "",
    cashback_min_amount: Decimal = Decimal(0),
    cashback_max_amount: Decimal | None = None,
    allows_pin_redemption: bool = False,
    cashback_holding_days: int = 0,
    cashback_expiry_days: int | None = None,
    cashback_expiry_policy: str = "rolling",
    cashback_expiry_date: str | None = None,
    cashback_inactivity_days: int | None = None,
    tier_period_days: int = 365,
    tier_retention_days: int = 365,
    time_zone: str | None = None,
    currency: str | None = None,
    is_active: bool = True,
) -> Card:
    """Creates a card after the model's validation and the currency's decimal places.

    Raises `InvalidInput` with the offending fields.
    """
    card = Card(
        app=app,
        name=name,
        unique_identifier=unique_identifier,
        description=description,
        cashback_percentage=cashback_percentage,
        cashback_min_amount=cashback_min_amount,
        cashback_max_amount=cashback_max_amount,
        allows_pin_redemption=allows_pin_redemption,
        cashback_holding_days=cashback_holding_days,
        cashback_expiry_days=cashback_expiry_days,
        cashback_expiry_policy=cashback_expiry_policy,
        cashback_expiry_date=cashback_expiry_date,
        cashback_inactivity_days=cashback_inactivity_days,
        tier_period_days=tier_period_days,
        tier_retention_days=tier_retention_days,
        is_active=is_active,
    )
    if currency:
        card.currency = currency
    if time_zone:
        card.time_zone = time_zone
    try:
        card.full_clean()
    except ValidationError as exc:
        raise InvalidInput("The card is invalid.", details=exc.message_dict) from None
    for field in ("cashback_min_amount", "cashback_max_amount"):
        value = getattr(card, field)
        if value is not None and not money.has_valid_places(value, card.currency):
            raise InvalidInput(
                "The card is invalid.",
                details={field: [f"Too many decimal places for {card.currency}."]},
            )
    card.save()
    return card


@receiver(post_save, sender=Card)
@receiver(post_delete, sender=Card)
def card_changed(**kwargs) -> None:
    """A card changed, by any way in that saves it (the back office, `create_card`, a service):
    this process forgets its cards at once, and every process once the change is committed.
    (A bulk `update()` sends no signal: `API_KEY_CACHE_SECONDS` bounds how long it goes unseen.)"""
    card_cache_clear()
    configuration_changed()

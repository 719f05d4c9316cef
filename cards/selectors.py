from django.db.models import QuerySet

from apps_auth.models import App
from cards.errors import CardInactive
from cards.models import Card
from core.errors import NotFound


def card_list(*, app: App) -> QuerySet[Card]:
    """The app's active cards."""
    return Card.objects.filter(app=app, is_active=True).order_by("id")


def card_get(*, app: App, card_id: int) -> Card:
    """The app's card, active or not. Raises `NotFound` for an unknown id or another app's card."""
    card = Card.objects.get_of_app(app_id=app.pk, card_id=card_id)
    if card is None:
        raise NotFound("Card not found.")
    return card


def card_check_active(card: Card) -> None:
    """Raises `CardInactive` for a card that no longer earns, spends or refunds."""
    if not card.is_active:
        raise CardInactive()

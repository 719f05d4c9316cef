from django.db.models import QuerySet

from apps_auth.models import App
from cards.models import Card
from config import sql
from config.api.errors import NotFound


def card_list(*, app: App) -> QuerySet[Card]:
    """The app's active cards."""
    return Card.objects.filter(app=app, is_active=True).order_by("id")


def card_get(*, app: App, card_id: int) -> Card:
    """The app's card, active or not. Raises `NotFound` for an unknown id or another app's card."""
    card = sql.select_one(Card, "id = %s AND app_id = %s", [card_id, app.pk])
    if card is None:
        raise NotFound("Card not found.")
    return card

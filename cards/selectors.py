import copy

from django.conf import settings
from django.db.models import QuerySet

from apps_auth.models import App
from cards.errors import CardInactive
from cards.models import Card
from core.errors import NotFound
from core.generations import GenerationCache


def card_list(*, app: App) -> QuerySet[Card]:
    """The app's active cards."""
    return Card.objects.filter(app=app, is_active=True).order_by("id")


# Cards held per process, unknown ids too (as misses), so this bounds them.
CARD_CACHE_SIZE = 10_000
_cards: GenerationCache[tuple[int, int], Card | None] = GenerationCache(
    CARD_CACHE_SIZE, ttl=settings.API_KEY_CACHE_SECONDS
)


def card_get(*, app: App, card_id: int) -> Card:
    """The app's card, active or not. Raises `NotFound` for an unknown id or another app's card.

    From this process's cache while the configuration generation (`core.generations`, which
    the request's authentication has read already) is the one the card was read under, and
    for at most `API_KEY_CACHE_SECONDS`; else from the database. A change to a card (its rate,
    its caps, its holding, deactivated) writes a new generation once committed, so every
    process answers the very next request with the card as it now is (`card_changed`).
    """
    card = _cards.get(
        (app.pk, card_id), lambda: Card.objects.get_of_app(app_id=app.pk, card_id=card_id)
    )
    if card is None:
        raise NotFound("Card not found.")
    return copy.copy(card)  # the caller's own: what it sets on it stays in its request


def card_cache_clear() -> None:
    """Forgets every card this process holds."""
    _cards.clear()


def card_check_active(card: Card) -> None:
    """Raises `CardInactive` for a card that no longer earns, spends or refunds."""
    if not card.is_active:
        raise CardInactive()

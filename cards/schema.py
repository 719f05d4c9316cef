"""The OpenAPI declarations of the cards API's operations (drf-spectacular): each a
decorator its view method wears, so that a view says what it does and this module what
it declares."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema

from cards.serializers import CardListSerializer, CardSerializer
from core.api.schema import documented, path_id
from core.api.serializers import envelope, error_responses, examples
from core.errors import NotFound

CARD_ID = path_id("id", "The card's id.")


CARD_EXAMPLE = {
    "id": 10,
    "unique_identifier": "CASH-001",
    "name": "Premium Cashback Card",
    "description": "5% cashback on all purchases",
    "reward_system": "cashback",
    "cashback_config": {
        "cashback_percentage": 5,
        "cashback_min_amount": Decimal("10.000"),
        "cashback_max_amount": Decimal("1000.000"),
        "allows_pin_redemption": True,
        "cashback_holding_days": 0,
        "cashback_expiry_days": None,
        "cashback_expiry_policy": "rolling",
        "cashback_expiry_date": None,
        "cashback_inactivity_days": None,
        "tier_period_days": 365,
        "tier_retention_days": 365,
        "time_zone": "Africa/Tunis",
    },
    "currency": "TND",
    "is_active": True,
}


CARD_LIST = extend_schema(
    summary="List cards",
    operation_id="list_cards",
    description="The app's active cashback cards, with their rates and rules.",
    responses={200: envelope(CardListSerializer), **error_responses()},
    examples=examples(response={"cards": [CARD_EXAMPLE], "total": 1}),
)

CARD_RETRIEVE = extend_schema(
    summary="Get a card",
    operation_id="get_card",
    description="One of the app's cards, active or not, in the list's item shape.",
    parameters=[CARD_ID],
    responses={
        200: envelope(CardSerializer),
        **error_responses(documented(NotFound, "The app has no card with this id.")),
    },
    examples=examples(response=CARD_EXAMPLE),
)

"""The OpenAPI declarations of the programme API's operations (drf-spectacular): each a
decorator its view method wears, so that a view says what it does and this module what
it declares."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema

from apps_auth.idempotency import IDEMPOTENCY_KEY
from core.api.schema import documented
from core.api.serializers import envelope, error_responses, examples
from core.errors import NotFound
from programme.serializers import (
    RuleInputSerializer,
    RuleListSerializer,
    RuleSerializer,
    TierInputSerializer,
    TierListSerializer,
    TierSerializer,
)

CARD_NOT_FOUND = documented(NotFound, "The app has no card with this id.")


RULE_NOT_FOUND = documented(NotFound, "The app has no rule with this id.")


RULE_REQUEST = {
    "name": "Double cashback weekend",
    "kind": "multiplier",
    "factor": 2,
    "days_of_week": [6, 7],
    "categories": ["coffee"],
    "max_uses_per_member": 2,
    "per": "week",
    "budget": Decimal("5000.000"),
}


RULE_EXAMPLE = {
    "id": 7,
    "card_id": 10,
    "name": "Double cashback weekend",
    "kind": "multiplier",
    "factor": 2,
    "percentage": None,
    "amount": None,
    "priority": 100,
    "stackable": True,
    "active": True,
    "starts_at": None,
    "ends_at": None,
    "days_of_week": [6, 7],
    "hours": None,
    "categories": ["coffee"],
    "skus": [],
    "min_purchase": None,
    "tiers": [],
    "first_purchase_only": False,
    "max_per_transaction": None,
    "max_uses_per_member": 2,
    "per": "week",
    "budget": Decimal("5000.000"),
    "budget_remaining": Decimal("4987.500"),
    "uses": 5,
    "created_at": "2025-01-15T10:30:00Z",
}


TIER_EXAMPLE = {
    "id": 3,
    "card_id": 10,
    "name": "Gold",
    "threshold": Decimal("1000.000"),
    "cashback_percentage": 7,
    "created_at": "2025-01-15T10:30:00Z",
}


RULE_LIST = extend_schema(
    summary="List a card's earning rules",
    operation_id="list_card_rules",
    description="The card's rules, active first, each in the order it applies (priority, "
    "then id), with its live budget_remaining and uses.",
    responses={200: envelope(RuleListSerializer), **error_responses(CARD_NOT_FOUND)},
    examples=examples(response={"rules": [RULE_EXAMPLE]}),
)

RULE_CREATE = extend_schema(
    summary="Create an earning rule",
    operation_id="create_card_rule",
    description="A rule on top of the card's percentage: a multiplier of the base, a "
    "bonus percentage, or a fixed bonus, with optional conditions (dates, days of the week "
    "and hours in the card's time zone, categories and SKUs of basket lines, a minimum, "
    "tiers, first purchase) and limits (per transaction, uses per member per calendar "
    "period, a budget that is never overspent).",
    parameters=[IDEMPOTENCY_KEY],
    request=RuleInputSerializer,
    responses={200: envelope(RuleSerializer), **error_responses(CARD_NOT_FOUND)},
    examples=examples(request=RULE_REQUEST, response=RULE_EXAMPLE),
)

RULE_UPDATE = extend_schema(
    summary="Change an earning rule",
    operation_id="update_rule",
    description="Changes any of the rule's fields; null or [] clears a condition or a "
    "limit. A budget cannot go below what the rule gave already.",
    request=RuleInputSerializer(partial=True),
    responses={200: envelope(RuleSerializer), **error_responses(RULE_NOT_FOUND)},
    examples=examples(request={"budget": Decimal("8000.000")}, response=RULE_EXAMPLE),
)

RULE_DELETE = extend_schema(
    summary="Deactivate an earning rule",
    operation_id="deactivate_rule",
    description="The rule applies no more (active: false). It is kept, with what it "
    "gave, so that every breakdown that names it stays explainable.",
    responses={200: envelope(RuleSerializer), **error_responses(RULE_NOT_FOUND)},
    examples=examples(response={**RULE_EXAMPLE, "active": False}),
)

TIER_LIST = extend_schema(
    summary="List a card's tiers",
    operation_id="list_card_tiers",
    description="The card's tiers, lowest threshold first.",
    responses={200: envelope(TierListSerializer), **error_responses(CARD_NOT_FOUND)},
    examples=examples(response={"tiers": [TIER_EXAMPLE]}),
)

TIER_CREATE = extend_schema(
    summary="Create a tier",
    operation_id="create_card_tier",
    description="Members whose qualifying spend on the card (purchases over "
    "tier_period_days, net of refunds) reaches the threshold earn the tier's percentage "
    "instead of the card's, from their next earn. Thresholds are unique per card.",
    parameters=[IDEMPOTENCY_KEY],
    request=TierInputSerializer,
    responses={200: envelope(TierSerializer), **error_responses(CARD_NOT_FOUND)},
    examples=examples(
        request={"name": "Gold", "threshold": Decimal("1000.000"), "cashback_percentage": 7},
        response=TIER_EXAMPLE,
    ),
)

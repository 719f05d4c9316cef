from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets

from apps_auth.idempotency import IDEMPOTENCY_KEY, idempotent
from apps_auth.permissions import HasCardRead, HasCardWrite
from cards.models import Card
from cards.selectors import card_get
from core.api.fields import MAX_ID
from core.api.responses import ok
from core.api.schema import documented, path_id
from core.api.serializers import NoQuerySerializer, envelope, error_responses, examples, validated
from core.errors import NotFound
from programme.models import EarningRule, Tier
from programme.serializers import (
    RuleInputSerializer,
    RuleListSerializer,
    RuleSerializer,
    TierInputSerializer,
    TierListSerializer,
    TierSerializer,
)
from programme.services import (
    rule_create,
    rule_deactivate,
    rule_update,
    rule_uses,
    tier_create,
)

CARD_ID = path_id("card_id", "The card's id.")
RULE_ID = path_id("id", "The rule's id.")
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


def _card(request, card_id: str) -> Card:
    number = int(card_id)
    if number > MAX_ID:
        raise NotFound("Card not found.")
    return card_get(app=request.auth, card_id=number)


def _rules_answer(card: Card, rules: list[EarningRule]) -> list[dict]:
    uses = rule_uses(rules)
    context = {"currency": card.currency, "uses": uses}
    return [RuleSerializer(rule, context=context).data for rule in rules]


def _write(action: str) -> bool:
    return action in ("create", "partial_update", "destroy")


@extend_schema(tags=["Programme"], parameters=[CARD_ID])
class CardRuleViewSet(viewsets.ViewSet):
    """A card's earning rules: `/cards/{card_id}/rules`."""

    def get_permissions(self):
        return [HasCardWrite() if _write(self.action) else HasCardRead()]

    @extend_schema(
        summary="List a card's earning rules",
        operation_id="list_card_rules",
        description="The card's rules, active first, each in the order it applies (priority, "
        "then id), with its live budget_remaining and uses.",
        responses={200: envelope(RuleListSerializer), **error_responses(CARD_NOT_FOUND)},
        examples=examples(response={"rules": [RULE_EXAMPLE]}),
    )
    def list(self, request, card_id: str):
        validated(NoQuerySerializer, request.query_params)
        card = _card(request, card_id)
        rules = sorted(
            EarningRule.objects.filter(app_id=card.app_id, card=card),
            key=lambda r: (not r.active, r.priority, r.pk),
        )
        return ok({"rules": _rules_answer(card, rules)})

    @extend_schema(
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
    @idempotent(input=RuleInputSerializer)
    def create(self, request, card_id: str, params: RuleInputSerializer):
        card = _card(request, card_id)
        rule = rule_create(card=card, fields=dict(params.validated_data))
        return ok(_rules_answer(card, [rule])[0])


@extend_schema(tags=["Programme"], parameters=[RULE_ID])
class RuleViewSet(viewsets.ViewSet):
    """One rule: `/rules/{id}`."""

    lookup_value_regex = r"[0-9]+"
    permission_classes = [HasCardWrite]

    def _rule_card(self, request, pk: str) -> Card:
        number = int(pk)
        card_id = (
            EarningRule.objects.filter(app_id=request.auth.pk, pk=number)
            .values_list("card_id", flat=True)
            .first()
            if number <= MAX_ID
            else None
        )
        if card_id is None:
            raise NotFound("Rule not found.")
        return card_get(app=request.auth, card_id=card_id)

    @extend_schema(
        summary="Change an earning rule",
        operation_id="update_rule",
        description="Changes any of the rule's fields; null or [] clears a condition or a "
        "limit. A budget cannot go below what the rule gave already.",
        request=RuleInputSerializer(partial=True),
        responses={200: envelope(RuleSerializer), **error_responses(RULE_NOT_FOUND)},
        examples=examples(request={"budget": Decimal("8000.000")}, response=RULE_EXAMPLE),
    )
    def partial_update(self, request, pk: str):
        card = self._rule_card(request, pk)
        params = RuleInputSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        rule = rule_update(card=card, rule_id=int(pk), changes=dict(params.validated_data))
        return ok(_rules_answer(card, [rule])[0])

    @extend_schema(
        summary="Deactivate an earning rule",
        operation_id="deactivate_rule",
        description="The rule applies no more (active: false). It is kept, with what it "
        "gave, so that every breakdown that names it stays explainable.",
        responses={200: envelope(RuleSerializer), **error_responses(RULE_NOT_FOUND)},
        examples=examples(response={**RULE_EXAMPLE, "active": False}),
    )
    def destroy(self, request, pk: str):
        card = self._rule_card(request, pk)
        rule = rule_deactivate(card=card, rule_id=int(pk))
        return ok(_rules_answer(card, [rule])[0])


@extend_schema(tags=["Programme"], parameters=[CARD_ID])
class CardTierViewSet(viewsets.ViewSet):
    """A card's tiers: `/cards/{card_id}/tiers`."""

    def get_permissions(self):
        return [HasCardWrite() if _write(self.action) else HasCardRead()]

    @extend_schema(
        summary="List a card's tiers",
        operation_id="list_card_tiers",
        description="The card's tiers, lowest threshold first.",
        responses={200: envelope(TierListSerializer), **error_responses(CARD_NOT_FOUND)},
        examples=examples(response={"tiers": [TIER_EXAMPLE]}),
    )
    def list(self, request, card_id: str):
        validated(NoQuerySerializer, request.query_params)
        card = _card(request, card_id)
        tiers = Tier.objects.filter(app_id=card.app_id, card=card).order_by("threshold", "id")
        context = {"currency": card.currency}
        return ok({"tiers": [TierSerializer(t, context=context).data for t in tiers]})

    @extend_schema(
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
    @idempotent(input=TierInputSerializer)
    def create(self, request, card_id: str, params: TierInputSerializer):
        card = _card(request, card_id)
        data = params.validated_data
        tier = tier_create(card=card, **data)
        return ok(TierSerializer(tier, context={"currency": card.currency}).data)

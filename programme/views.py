from drf_spectacular.utils import extend_schema
from rest_framework import viewsets

from apps_auth.idempotency import idempotent
from apps_auth.permissions import HasCardRead, HasCardWrite
from cards.models import Card
from cards.selectors import card_get
from core.api.fields import MAX_ID
from core.api.responses import ok
from core.api.schema import path_id
from core.api.serializers import NoQuerySerializer, validated
from core.errors import NotFound
from programme.models import EarningRule, Tier
from programme.schema import (
    RULE_CREATE,
    RULE_DELETE,
    RULE_LIST,
    RULE_UPDATE,
    TIER_CREATE,
    TIER_LIST,
)
from programme.serializers import (
    RuleInputSerializer,
    RuleSerializer,
    TierInputSerializer,
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

    @RULE_LIST
    def list(self, request, card_id: str):
        validated(NoQuerySerializer, request.query_params)
        card = _card(request, card_id)
        rules = sorted(
            EarningRule.objects.filter(app_id=card.app_id, card=card),
            key=lambda r: (not r.active, r.priority, r.pk),
        )
        return ok({"rules": _rules_answer(card, rules)})

    @RULE_CREATE
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

    @RULE_UPDATE
    def partial_update(self, request, pk: str):
        card = self._rule_card(request, pk)
        params = RuleInputSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        rule = rule_update(card=card, rule_id=int(pk), changes=dict(params.validated_data))
        return ok(_rules_answer(card, [rule])[0])

    @RULE_DELETE
    def destroy(self, request, pk: str):
        card = self._rule_card(request, pk)
        rule = rule_deactivate(card=card, rule_id=int(pk))
        return ok(_rules_answer(card, [rule])[0])


@extend_schema(tags=["Programme"], parameters=[CARD_ID])
class CardTierViewSet(viewsets.ViewSet):
    """A card's tiers: `/cards/{card_id}/tiers`."""

    def get_permissions(self):
        return [HasCardWrite() if _write(self.action) else HasCardRead()]

    @TIER_LIST
    def list(self, request, card_id: str):
        validated(NoQuerySerializer, request.query_params)
        card = _card(request, card_id)
        tiers = Tier.objects.filter(app_id=card.app_id, card=card).order_by("threshold", "id")
        context = {"currency": card.currency}
        return ok({"tiers": [TierSerializer(t, context=context).data for t in tiers]})

    @TIER_CREATE
    @idempotent(input=TierInputSerializer)
    def create(self, request, card_id: str, params: TierInputSerializer):
        card = _card(request, card_id)
        data = params.validated_data
        tier = tier_create(card=card, **data)
        return ok(TierSerializer(tier, context={"currency": card.currency}).data)

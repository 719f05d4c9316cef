from datetime import time

from rest_framework import serializers

from core import money
from core.api.fields import (
    AmountField,
    AmountOrZeroField,
    NumberOutField,
    WholeNumberField,
    timestamp,
)
from core.api.serializers import StrictSerializer
from programme.models import EarningRule, Period, RuleKind, Tier

NAMES_MAX = 100


def _names(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=64),
        max_length=NAMES_MAX,
        required=False,
        allow_null=True,
        help_text=help_text,
    )


class HoursSerializer(StrictSerializer):
    # `from` is a Python keyword: the fields are named in `get_fields`.
    def get_fields(self):
        return {
            "from": serializers.TimeField(format="%H:%M", input_formats=["%H:%M"]),
            "to": serializers.TimeField(format="%H:%M", input_formats=["%H:%M"]),
        }

    def validate(self, attrs):
        # Both, even in a PATCH: a window is changed whole.
        missing = [name for name in ("from", "to") if name not in attrs]
        if missing:
            raise serializers.ValidationError(
                {name: ["This field is required."] for name in missing}
            )
        if attrs["from"] == attrs["to"]:
            raise serializers.ValidationError({"to": ["Must differ from 'from'."]})
        return attrs


class RuleInputSerializer(StrictSerializer):
    """A rule as a merchant sends it; on PATCH any subset."""

    name = serializers.CharField(min_length=1, max_length=200)
    kind = serializers.ChoiceField(choices=RuleKind.values)
    factor = AmountField(required=False, allow_null=True, help_text="multiplier: 1 < f ≤ 10.")
    percentage = AmountField(
        required=False, allow_null=True, help_text="bonus_percentage: 0 < p ≤ 100."
    )
    amount = AmountField(required=False, allow_null=True, help_text="fixed_bonus: the bonus.")
    priority = WholeNumberField(
        required=False, min_value=-1_000_000, max_value=1_000_000, help_text="Lower first."
    )
    stackable = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    days_of_week = serializers.ListField(
        child=WholeNumberField(min_value=1, max_value=7),
        max_length=7,
        required=False,
        allow_null=True,
        help_text="ISO days, 1 Monday … 7 Sunday, in the card's time zone.",
    )
    hours = HoursSerializer(
        required=False,
        allow_null=True,
        help_text='{"from": "HH:MM", "to": "HH:MM"} in the card\'s time zone; may wrap past '
        "midnight (22:00 to 02:00).",
    )
    categories = _names("Only basket lines of these categories earn it.")
    skus = _names("Only basket lines of these SKUs earn it.")
    min_purchase = AmountField(
        required=False, allow_null=True, help_text="Of the amount the rule matches."
    )
    tiers = _names("Only members in these tiers (by name).")
    first_purchase_only = serializers.BooleanField(required=False)
    max_per_transaction = AmountField(required=False, allow_null=True)
    max_uses_per_member = WholeNumberField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000
    )
    per = serializers.ChoiceField(choices=Period.values, required=False, allow_null=True)
    budget = AmountField(required=False, allow_null=True)


def _amount(value, currency: str):
    return None if value is None else money.quantize(value, currency)


def _timestamp(value):
    return None if value is None else timestamp(value)


class RuleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    card_id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=RuleKind.values)
    factor = NumberOutField(allow_null=True)
    percentage = NumberOutField(allow_null=True)
    amount = NumberOutField(allow_null=True)
    priority = serializers.IntegerField()
    stackable = serializers.BooleanField()
    active = serializers.BooleanField()
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    days_of_week = serializers.ListField(child=serializers.IntegerField())
    hours = HoursSerializer(allow_null=True)
    categories = serializers.ListField(child=serializers.CharField())
    skus = serializers.ListField(child=serializers.CharField())
    min_purchase = NumberOutField(allow_null=True)
    tiers = serializers.ListField(child=serializers.CharField())
    first_purchase_only = serializers.BooleanField()
    max_per_transaction = NumberOutField(allow_null=True)
    max_uses_per_member = serializers.IntegerField(allow_null=True)
    per = serializers.ChoiceField(choices=Period.values, allow_null=True)
    budget = NumberOutField(allow_null=True)
    budget_remaining = NumberOutField(
        allow_null=True, help_text="Live: budget − what it gave, net of refunds."
    )
    uses = serializers.IntegerField(help_text="Live: how many earns it applied to.")
    created_at = serializers.DateTimeField()

    def to_representation(self, rule: EarningRule) -> dict:
        currency = self.context["currency"]
        uses = self.context.get("uses", {}).get(rule.pk, 0)
        hours = None
        if rule.hours_from is not None and rule.hours_to is not None:
            hours = {"from": _hhmm(rule.hours_from), "to": _hhmm(rule.hours_to)}
        return {
            "id": rule.pk,
            "card_id": rule.card_id,
            "name": rule.name,
            "kind": rule.kind,
            "factor": None if rule.factor is None else money.plain(rule.factor),
            "percentage": None if rule.percentage is None else money.plain(rule.percentage),
            "amount": _amount(rule.amount, currency),
            "priority": rule.priority,
            "stackable": rule.stackable,
            "active": rule.active,
            "starts_at": _timestamp(rule.starts_at),
            "ends_at": _timestamp(rule.ends_at),
            "days_of_week": list(rule.days_of_week),
            "hours": hours,
            "categories": list(rule.categories),
            "skus": list(rule.skus),
            "min_purchase": _amount(rule.min_purchase, currency),
            "tiers": list(rule.tiers),
            "first_purchase_only": rule.first_purchase_only,
            "max_per_transaction": _amount(rule.max_per_transaction, currency),
            "max_uses_per_member": rule.max_uses_per_member,
            "per": rule.per,
            "budget": _amount(rule.budget, currency),
            "budget_remaining": _amount(rule.budget_remaining, currency),
            "uses": uses,
            "created_at": _timestamp(rule.created_at),
        }


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


class RuleListSerializer(serializers.Serializer):
    rules = RuleSerializer(many=True)


class TierInputSerializer(StrictSerializer):
    name = serializers.CharField(min_length=1, max_length=64)
    threshold = AmountOrZeroField(help_text="The qualifying spend that reaches the tier.")
    cashback_percentage = AmountField(help_text="Replaces the card's: 0 < p ≤ 100.")


class TierSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    card_id = serializers.IntegerField()
    name = serializers.CharField()
    threshold = NumberOutField()
    cashback_percentage = NumberOutField()
    created_at = serializers.DateTimeField()

    def to_representation(self, tier: Tier) -> dict:
        return {
            "id": tier.pk,
            "card_id": tier.card_id,
            "name": tier.name,
            "threshold": money.quantize(tier.threshold, self.context["currency"]),
            "cashback_percentage": money.plain(tier.cashback_percentage),
            "created_at": _timestamp(tier.created_at),
        }


class TierListSerializer(serializers.Serializer):
    tiers = TierSerializer(many=True)

from rest_framework import serializers

from cards.models import Card
from core import money
from core.api.fields import NumberOutField


class CashbackConfigSerializer(serializers.Serializer):
    cashback_percentage = NumberOutField()
    cashback_min_amount = NumberOutField()
    cashback_max_amount = NumberOutField(allow_null=True, help_text="null: no cap")
    allows_pin_redemption = serializers.BooleanField()
    cashback_holding_days = serializers.IntegerField(
        help_text="Days an earning stays pending before it can be spent."
    )
    cashback_expiry_days = serializers.IntegerField(
        allow_null=True, help_text="Days cashback lasts once spendable; null: it never expires."
    )
    cashback_expiry_policy = serializers.ChoiceField(
        choices=["rolling", "end_of_month", "fixed_date"],
        help_text="rolling: cashback_expiry_days after it is spendable; end_of_month: the end "
        "of that date's month; fixed_date: the end of the next cashback_expiry_date.",
    )
    cashback_expiry_date = serializers.CharField(
        allow_null=True, help_text="MM-DD, under the fixed_date policy; else null."
    )
    cashback_inactivity_days = serializers.IntegerField(
        allow_null=True,
        help_text="Days without an earning after which all spendable cashback on the card "
        "expires; null: never.",
    )
    tier_period_days = serializers.IntegerField(
        help_text="Days of purchases that count toward a member's tier."
    )
    tier_retention_days = serializers.IntegerField(
        help_text="Days a reached tier is kept at least."
    )
    time_zone = serializers.CharField(
        help_text="IANA name: rules' days and hours, calendar periods and expiry dates are read "
        "in it."
    )

    def to_representation(self, card: Card) -> dict:
        cap = card.cashback_max_amount
        return {
            "cashback_percentage": money.plain(card.cashback_percentage),
            "cashback_min_amount": money.quantize(card.cashback_min_amount, card.currency),
            "cashback_max_amount": None if cap is None else money.quantize(cap, card.currency),
            "allows_pin_redemption": card.allows_pin_redemption,
            "cashback_holding_days": card.cashback_holding_days,
            "cashback_expiry_days": card.cashback_expiry_days,
            "cashback_expiry_policy": card.cashback_expiry_policy,
            "cashback_expiry_date": card.cashback_expiry_date,
            "cashback_inactivity_days": card.cashback_inactivity_days,
            "tier_period_days": card.tier_period_days,
            "tier_retention_days": card.tier_retention_days,
            "time_zone": card.time_zone,
        }


class CardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    unique_identifier = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    description = serializers.CharField()
    reward_system = serializers.CharField()
    cashback_config = CashbackConfigSerializer(source="*")
    currency = serializers.CharField()
    is_active = serializers.BooleanField()


class CardListSerializer(serializers.Serializer):
    cards = CardSerializer(many=True)
    total = serializers.IntegerField()

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

    def to_representation(self, card: Card) -> dict:
        cap = card.cashback_max_amount
        return {
            "cashback_percentage": money.plain(card.cashback_percentage),
            "cashback_min_amount": money.quantize(card.cashback_min_amount, card.currency),
            "cashback_max_amount": None if cap is None else money.quantize(cap, card.currency),
            "allows_pin_redemption": card.allows_pin_redemption,
            "cashback_holding_days": card.cashback_holding_days,
            "cashback_expiry_days": card.cashback_expiry_days,
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

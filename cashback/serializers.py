from decimal import Decimal
from typing import Any, cast

from rest_framework import serializers

from cashback.filters import LedgerEntryFilter
from cashback.models import EntryType, LedgerEntry
from core import money
from core.api.fields import (
    AmountField,
    IdField,
    MetadataField,
    NumberOutField,
    WholeNumberField,
    timestamp,
)
from core.api.serializers import StrictSerializer
from members.serializers import MemberRefSerializer, PinField
from programme.engine import Line, RefundLine

# Input


class _OperationFields(serializers.Serializer):
    card_id = IdField(help_text="The cashback card.")
    reference = serializers.CharField(
        max_length=255, required=False, help_text="Your reference; unique per card and operation."
    )
    metadata = MetadataField(required=False, help_text="Your own data, a JSON object ≤ 16 KB.")


MAX_LINES = 100


class LineSerializer(StrictSerializer):
    sku = serializers.CharField(min_length=1, max_length=64, help_text="Your product code.")
    category = serializers.CharField(
        min_length=1,
        max_length=64,
        required=False,
        allow_null=True,
        default=None,
        help_text="Your product category, which rules may name.",
    )
    amount = AmountField(help_text="What the line costs in all (not per unit).")
    quantity = WholeNumberField(min_value=1, max_value=10**6, default=1)

    def to_internal_value(self, data):
        # Field by field, DRF's validation costs an earn of five lines a twentieth of its time. A
        # line whose texts are plain (printable ASCII, trimmed, within their fields' lengths)
        # and whose quantity is a whole number within its field's range is read as it is, its
        # amount by its own field; any other is validated field by field, which says what is
        # wrong with it.
        line = self._plain(data)
        return line if line is not None else super().to_internal_value(data)

    def _plain(self, data) -> dict | None:
        fields: Any = self.fields
        if type(data) is not dict or not data.keys() <= fields.keys():
            return None
        sku, category, quantity = data.get("sku"), data.get("category"), data.get("quantity", 1)
        if not _plain_text(sku, fields["sku"]):
            return None
        if category is not None and not _plain_text(category, fields["category"]):
            return None
        limits = fields["quantity"]
        if type(quantity) is not int or not limits.min_value <= quantity <= limits.max_value:
            return None
        try:
            amount = fields["amount"].to_internal_value(data.get("amount"))
        except serializers.ValidationError:
            return None
        return {"sku": sku, "category": category, "amount": amount, "quantity": quantity}


def _plain_text(value, field: serializers.CharField) -> bool:
    """Text that `field` takes as it is: nothing its validation would trim, refuse or change."""
    return (
        type(value) is str
        and value.isascii()
        and value.isprintable()
        and value == value.strip()
        and (field.min_length or 0) <= len(value) <= (field.max_length or len(value))
    )


class BasketField(serializers.ListField):
    """An earn's (or a quote's) basket: when every line is plain (`LineSerializer._plain`),
    the lines as they are; otherwise each validated by `LineSerializer`, which says what is wrong
    with which. Its child keeps nothing of a request's, so every serializer's copy of the field
    shares it (`core.api.serializers.InputSerializer`): DRF's deep copy of a list and its child,
    and its validation of each line field by field, cost an earn of five lines more CPU than
    its rules' arithmetic."""

    shares_child = True

    def to_internal_value(self, data):
        if type(data) is list and 0 < len(data) <= MAX_LINES:
            child = cast(LineSerializer, self.child)
            lines = [child._plain(line) for line in data]
            if None not in lines:
                return lines
        return super().to_internal_value(data)


class RefundLineSerializer(StrictSerializer):
    sku = serializers.CharField(min_length=1, max_length=64, help_text="A line of the earning.")
    amount = AmountField(help_text="What of that line is refunded.")


def lines_check(attrs: dict, total_field: str) -> None:
    """Basket lines add up to the operation's amount exactly."""
    lines = attrs.get("lines")
    if lines is None or total_field not in attrs:
        return
    total = sum((line["amount"] for line in lines), Decimal(0))
    if total != attrs[total_field]:
        raise serializers.ValidationError(
            {"lines": [f"The lines add up to {total}, not the {total_field} {attrs[total_field]}."]}
        )


class EarnSerializer(MemberRefSerializer, _OperationFields, StrictSerializer):
    member_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Name for a new member."
    )
    purchase_amount = AmountField(help_text="The purchase amount, in the card's currency.")
    lines = BasketField(
        child=LineSerializer(),
        required=False,
        min_length=1,
        max_length=MAX_LINES,
        help_text="The basket, at most 100 lines adding up to purchase_amount exactly; rules "
        "may name their categories and SKUs. Without lines the purchase is one unnamed line.",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        lines_check(attrs, "purchase_amount")
        return attrs

    def basket(self) -> list[Line] | None:
        lines = self.validated_data.get("lines")
        if lines is None:
            return None
        return [
            Line(
                sku=line["sku"],
                category=line.get("category"),
                amount=line["amount"],
                quantity=line.get("quantity", 1),
            )
            for line in lines
        ]


class QuoteSerializer(EarnSerializer):
    """An earn's body, answered without writing anything."""


class RedeemSerializer(_OperationFields, StrictSerializer):
    amount = AmountField(help_text="The cashback to spend.")
    pin = PinField(required=False)
    member_id = IdField(required=False, help_text="If given, must be the token's member.")


class RefundSerializer(MemberRefSerializer, _OperationFields, StrictSerializer):
    refund_amount = AmountField(
        required=False,
        help_text="The amount of the purchase refunded; or give lines (with "
        "original_transaction_id).",
    )
    cashback_to_deduct = AmountField(
        required=False, help_text="Cashback to take back instead of the computed amount."
    )
    original_transaction_id = IdField(required=False, help_text="The earning this refund reverses.")
    lines = serializers.ListField(
        child=RefundLineSerializer(),
        required=False,
        min_length=1,
        max_length=MAX_LINES,
        help_text="Instead of refund_amount, for an earning made with lines: the lines "
        "refunded, by SKU. Each takes back its share of every contribution it earned.",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        lines = attrs.get("lines")
        if lines is None and "refund_amount" not in attrs:
            raise serializers.ValidationError(
                {"refund_amount": ["Give refund_amount, or lines with original_transaction_id."]}
            )
        if lines is not None:
            if "original_transaction_id" not in attrs:
                raise serializers.ValidationError(
                    {"lines": ["Lines refund an earning: give original_transaction_id."]}
                )
            if "cashback_to_deduct" in attrs:
                raise serializers.ValidationError(
                    {"cashback_to_deduct": ["Lines compute the deduction; give one or the other."]}
                )
            total = sum((line["amount"] for line in lines), Decimal(0))
            if attrs.get("refund_amount", total) != total:
                raise serializers.ValidationError(
                    {"lines": [f"The lines add up to {total}, not the refund_amount."]}
                )
            attrs["refund_amount"] = total
        return attrs

    def refunded_lines(self) -> list[RefundLine] | None:
        lines = self.validated_data.get("lines")
        if lines is None:
            return None
        return [RefundLine(sku=line["sku"], amount=line["amount"]) for line in lines]


class ReverseSerializer(StrictSerializer):
    card_id = IdField(help_text="The card the redemption was made on.")
    transaction_id = IdField(help_text="The redemption to reverse.")
    reason = serializers.CharField(
        max_length=500, required=False, help_text="Why, e.g. the sale was cancelled."
    )
    reference = serializers.CharField(
        max_length=255, required=False, help_text="Your reference; unique per card and operation."
    )


class BalanceQuerySerializer(MemberRefSerializer, StrictSerializer):
    card_id = IdField(help_text="The cashback card.")


class HistoryQuerySerializer(BalanceQuerySerializer):
    also_known = tuple(LedgerEntryFilter.base_filters)  # type, created_after, created_before

    limit = WholeNumberField(min_value=1, max_value=100, default=20)
    offset = WholeNumberField(min_value=0, max_value=10**9, default=0)


# Output


class _PostedSerializer(serializers.Serializer):
    """Renders a ledger entry in its card's currency (`context["card"]`)."""

    def in_currency(self, value: Decimal | None) -> Decimal | None:
        return None if value is None else money.quantize(value, self.context["card"].currency)


class BreakdownItemSerializer(serializers.Serializer):
    # A declared field named `source` shadows `Field.source` for the type checker only: the
    # serializer's metaclass takes declared fields out of the class.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["card", "tier", "rule"],
        help_text="card: the card's percentage; tier: the member's tier's, which replaces the "
        "card's; rule: an earning rule (a campaign).",
    )
    rule_id = serializers.IntegerField(allow_null=True, help_text="The rule; null for the base.")
    name = serializers.CharField(help_text="The card's, tier's or rule's name.")
    amount = NumberOutField(help_text="This part's cashback, rounded on its own.")


def breakdown_of(entry: LedgerEntry, currency: str, card_name: str) -> list[dict] | None:
    """Why the entry credited (or took back) what it did, as the API renders it: an earning's
    contributions adding up to its cashback (an earning made before breakdowns were kept was
    the card's alone), a refund's share of each; None for other entries."""
    kept = entry.breakdown
    if kept is None:
        if entry.entry_type != EntryType.EARNING:
            return None
        kept = [
            {"source": "card", "rule_id": None, "name": card_name, "amount": entry.total_amount}
        ]
    return [
        {
            "source": part["source"],
            "rule_id": part["rule_id"],
            "name": part["name"],
            "amount": money.quantize(Decimal(part["amount"]), currency),
        }
        for part in kept
    ]


class EarnResultSerializer(_PostedSerializer):
    transaction_id = serializers.IntegerField()
    purchase_amount = NumberOutField()
    cashback_percentage = NumberOutField()
    cashback_earned = NumberOutField()
    new_balance = NumberOutField()
    currency = serializers.CharField()
    member_id = serializers.IntegerField()
    card_id = serializers.IntegerField()
    reference = serializers.CharField(allow_null=True)
    earned_at = serializers.DateTimeField()
    status = serializers.ChoiceField(
        choices=["pending", "available"],
        help_text="pending: held until available_at, then released to the balance.",
    )
    available_at = serializers.DateTimeField(help_text="When the cashback can be spent.")
    pending_balance = NumberOutField(help_text="The wallet's cashback held, not yet spendable.")
    member_created = serializers.BooleanField(
        help_text="true when this earn created the member (neither its email nor its phone "
        "was known)."
    )
    breakdown = BreakdownItemSerializer(
        many=True, help_text="Why: each part of cashback_earned, adding up to it exactly."
    )

    def to_representation(self, entry: LedgerEntry) -> dict:
        card = self.context["card"]
        return {
            "transaction_id": entry.pk,
            "purchase_amount": self.in_currency(entry.purchase_amount),
            # An earning always records the percentage it was credited at.
            "cashback_percentage": money.plain(cast(Decimal, entry.cashback_percentage)),
            "cashback_earned": self.in_currency(entry.total_amount),
            "new_balance": self.in_currency(entry.balance_after),
            "currency": self.context["card"].currency,
            "member_id": entry.wallet.member_id,
            "card_id": entry.card_id,
            "reference": entry.reference,
            "earned_at": timestamp(entry.created_at),
            "status": "pending" if entry.pending_amount > 0 else "available",
            "available_at": timestamp(entry.lot.available_at),
            "pending_balance": self.in_currency(entry.pending_balance_after),
            "member_created": entry.member_created,
            "breakdown": breakdown_of(entry, card.currency, card.name),
        }


class QuoteResultSerializer(serializers.Serializer):
    cashback = NumberOutField(help_text="What the earn would credit now.")
    breakdown = BreakdownItemSerializer(many=True, help_text="Why, adding up to cashback.")
    cashback_percentage = NumberOutField(
        help_text="The base rate: the member's tier's or the card's."
    )
    currency = serializers.CharField()
    tier = serializers.CharField(allow_null=True, help_text="The member's tier on the card.")
    status = serializers.ChoiceField(
        choices=["pending", "available"], help_text="pending on a card that holds cashback."
    )
    member_id = serializers.IntegerField(
        allow_null=True, help_text="null: no such member yet (an earn would create it)."
    )

    def to_representation(self, quote) -> dict:
        card = self.context["card"]
        breakdown = [
            {
                "source": part.source,
                "rule_id": part.rule_id,
                "name": part.name,
                "amount": money.quantize(part.amount, card.currency),
            }
            for part in quote.breakdown.contributions
        ]
        return {
            "cashback": money.quantize(quote.cashback, card.currency),
            "breakdown": breakdown,
            "cashback_percentage": money.plain(quote.breakdown.percentage),
            "currency": card.currency,
            "tier": None if quote.tier is None else quote.tier.name,
            "status": "pending" if quote.held else "available",
            "member_id": quote.member_id,
        }


class RedeemResultSerializer(_PostedSerializer):
    transaction_id = serializers.IntegerField()
    amount_redeemed = NumberOutField()
    previous_balance = NumberOutField()
    new_balance = NumberOutField()
    currency = serializers.CharField()
    member_id = serializers.IntegerField()
    card_id = serializers.IntegerField()
    reference = serializers.CharField(allow_null=True)
    redeemed_at = serializers.DateTimeField()

    def to_representation(self, entry: LedgerEntry) -> dict:
        return {
            "transaction_id": entry.pk,
            "amount_redeemed": self.in_currency(-entry.amount),
            "previous_balance": self.in_currency(entry.previous_balance),
            "new_balance": self.in_currency(entry.balance_after),
            "currency": self.context["card"].currency,
            "member_id": entry.wallet.member_id,
            "card_id": entry.card_id,
            "reference": entry.reference,
            "redeemed_at": timestamp(entry.created_at),
        }


class RefundResultSerializer(_PostedSerializer):
    transaction_id = serializers.IntegerField()
    cashback_deducted = NumberOutField()
    cashback_not_recovered = NumberOutField()
    refund_amount = NumberOutField()
    previous_balance = NumberOutField()
    new_balance = NumberOutField()
    currency = serializers.CharField()
    member_id = serializers.IntegerField()
    card_id = serializers.IntegerField()
    reference = serializers.CharField(allow_null=True)
    original_transaction_id = serializers.IntegerField(allow_null=True)
    balance_warning = serializers.CharField(allow_null=True)
    refunded_at = serializers.DateTimeField()
    pending_deducted = NumberOutField(
        help_text="The part of cashback_deducted taken from cashback still held."
    )
    pending_balance = NumberOutField(help_text="The wallet's cashback held, not yet spendable.")
    breakdown = BreakdownItemSerializer(
        many=True,
        allow_null=True,
        help_text="Against an earning with a breakdown: what was taken back of each of its "
        "parts (negative; what a rule gave goes back to its budget); else null.",
    )

    def to_representation(self, entry: LedgerEntry) -> dict:
        card = self.context["card"]
        not_recovered = self.in_currency(entry.unrecovered_amount)
        taken = -entry.total_amount
        warning = None
        if not_recovered:
            set_out = self.in_currency(taken + entry.unrecovered_amount)
            warning = (
                f"The balance covered only {self.in_currency(taken)} of the {set_out} "
                f"cashback to take back; {not_recovered} was not recovered and the balance is "
                "now 0."
            )
        return {
            "transaction_id": entry.pk,
            "cashback_deducted": self.in_currency(taken),
            "cashback_not_recovered": not_recovered,
            "refund_amount": self.in_currency(entry.refund_amount),
            "previous_balance": self.in_currency(entry.previous_balance),
            "new_balance": self.in_currency(entry.balance_after),
            "currency": self.context["card"].currency,
            "member_id": entry.wallet.member_id,
            "card_id": entry.card_id,
            "reference": entry.reference,
            "original_transaction_id": entry.original_entry_id,
            "balance_warning": warning,
            "refunded_at": timestamp(entry.created_at),
            "pending_deducted": self.in_currency(-entry.pending_amount),
            "pending_balance": self.in_currency(entry.pending_balance_after),
            "breakdown": breakdown_of(entry, card.currency, card.name),
        }


class ReverseResultSerializer(_PostedSerializer):
    transaction_id = serializers.IntegerField(help_text="The reversal's own entry.")
    reversed_transaction_id = serializers.IntegerField(help_text="The redemption reversed.")
    amount = NumberOutField(help_text="What the redemption had taken, given back.")
    new_balance = NumberOutField()
    currency = serializers.CharField()
    member_id = serializers.IntegerField()
    card_id = serializers.IntegerField()
    reference = serializers.CharField(allow_null=True)
    reversed_at = serializers.DateTimeField()
    expired_amount = NumberOutField(
        help_text="The part given back to cashback that had expired meanwhile, written off "
        "again at once (an expiration entry each); new_balance is after it."
    )
    recovered_amount = NumberOutField(
        help_text="The part given back that went to cashback refunds since the redemption "
        "could not take back (the balance was too low then); new_balance is after it."
    )

    def to_representation(self, entry: LedgerEntry) -> dict:
        # The entry is credited net of the refunds' claims it settled (`ClaimSettlement`).
        given_back = -entry.original_entry.amount if entry.original_entry else entry.amount
        return {
            "transaction_id": entry.pk,
            "reversed_transaction_id": entry.original_entry_id,
            "amount": self.in_currency(given_back),
            "new_balance": self.in_currency(entry.balance_after - entry.unrecovered_amount),
            "currency": self.context["card"].currency,
            "member_id": entry.wallet.member_id,
            "card_id": entry.card_id,
            "reference": entry.reference,
            "reversed_at": timestamp(entry.created_at),
            "expired_amount": self.in_currency(entry.unrecovered_amount),
            "recovered_amount": self.in_currency(given_back - entry.amount),
        }


class MovementEventSerializer(_PostedSerializer):
    """The data of the events of entries the service itself posts: a release, an expiration,
    a staff adjustment."""

    transaction_id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=EntryType.choices)
    amount = NumberOutField(help_text="Signed: what the spendable balance moved by.")
    new_balance = NumberOutField()
    pending_balance = NumberOutField()
    currency = serializers.CharField()
    member_id = serializers.IntegerField()
    card_id = serializers.IntegerField()
    original_transaction_id = serializers.IntegerField(allow_null=True)
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()

    def to_representation(self, entry: LedgerEntry) -> dict:
        return {
            "transaction_id": entry.pk,
            "type": entry.entry_type,
            "amount": self.in_currency(entry.amount),
            "new_balance": self.in_currency(entry.balance_after),
            "pending_balance": self.in_currency(entry.pending_balance_after),
            "currency": self.context["card"].currency,
            "member_id": entry.wallet.member_id,
            "card_id": entry.card_id,
            "original_transaction_id": entry.original_entry_id,
            "metadata": entry.metadata,
            "created_at": timestamp(entry.created_at),
        }


class NextExpirySerializer(serializers.Serializer):
    amount = NumberOutField()
    expires_at = serializers.DateTimeField()


class TierStatusSerializer(serializers.Serializer):
    name = serializers.CharField()
    cashback_percentage = NumberOutField(help_text="The tier's rate, which replaces the card's.")
    qualifying_spend = NumberOutField(
        help_text="Purchases over the card's tier_period_days, net of refunds."
    )
    next_tier = serializers.CharField(allow_null=True)
    spend_to_next = NumberOutField(allow_null=True, help_text="Spend still needed for next_tier.")
    retained_until = serializers.DateTimeField(
        allow_null=True, help_text="The tier is kept at least until then, whatever the spend."
    )


class BalanceSerializer(serializers.Serializer):
    card_id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    cashback_balance = NumberOutField(help_text="What the member can spend now.")
    pending_balance = NumberOutField(help_text="Cashback earned and held, not yet spendable.")
    next_expiry = NextExpirySerializer(
        allow_null=True,
        help_text="The soonest unspent cashback to expire (the first of upcoming_expiries); "
        "null: none expires.",
    )
    upcoming_expiries = NextExpirySerializer(
        many=True,
        help_text="The 10 soonest instants spendable cashback expires at, oldest first, each "
        "with all that expires then; the instant the member's inactivity ends all of it is one.",
    )
    cashback_percentage = NumberOutField()
    reward_system = serializers.CharField()
    currency = serializers.CharField()
    queried_at = serializers.DateTimeField()
    tier = TierStatusSerializer(
        allow_null=True, help_text="The member's tier on the card; null: none reached, or none."
    )


class HistoryItemSerializer(_PostedSerializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=EntryType.choices)
    amount = NumberOutField()
    points = serializers.IntegerField()
    event = serializers.CharField()
    balance_after = NumberOutField()
    purchase_amount = NumberOutField(allow_null=True)
    refund_amount = NumberOutField(allow_null=True)
    reference = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()
    pending_amount = NumberOutField(
        help_text="What the entry moved the pending balance by (amount moves the spendable one)."
    )
    pending_balance_after = NumberOutField()
    original_transaction_id = serializers.IntegerField(
        allow_null=True,
        help_text="The earning a refund, release or expiration concerns; the redemption a "
        "reversal undoes.",
    )
    breakdown = BreakdownItemSerializer(
        many=True,
        allow_null=True,
        help_text="An earning's parts (adding up to its cashback); a refund's share of each "
        "part of its earning; else null.",
    )

    def to_representation(self, entry: LedgerEntry) -> dict:
        # Written out, the currency read once: a page renders twenty entries.
        card = self.context["card"]
        currency = card.currency

        def amount(value: Decimal | None) -> Decimal | None:
            return None if value is None else money.quantize(value, currency)

        return {
            "id": entry.pk,
            "type": entry.entry_type,
            "amount": amount(entry.amount),
            "pending_amount": amount(entry.pending_amount),
            "pending_balance_after": amount(entry.pending_balance_after),
            "original_transaction_id": entry.original_entry_id,
            "points": 0,
            "event": entry.event,
            "balance_after": amount(entry.balance_after),
            "purchase_amount": amount(entry.purchase_amount),
            "refund_amount": amount(entry.refund_amount),
            "reference": entry.reference,
            "metadata": entry.metadata,
            "created_at": timestamp(entry.created_at),
            "breakdown": breakdown_of(entry, currency, card.name),
        }


class PaginationSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    total = serializers.IntegerField()
    has_more = serializers.BooleanField()


class HistorySerializer(serializers.Serializer):
    card_id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    transactions = HistoryItemSerializer(many=True)
    pagination = PaginationSerializer()

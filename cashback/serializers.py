from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from rest_framework import serializers

from cashback.filters import LedgerEntryFilter
from cashback.models import EntryType, LedgerEntry
from core import money
from core.api.fields import AmountField, IdField, MetadataField, NumberOutField, WholeNumberField
from core.api.serializers import StrictSerializer
from members.serializers import MemberRefSerializer, PinField


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as DRF's DateTimeField renders it under TIME_ZONE = UTC;
    written out because a history page renders twenty of them."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Input


class _OperationFields(serializers.Serializer):
    card_id = IdField(help_text="The cashback card.")
    reference = serializers.CharField(
        max_length=255, required=False, help_text="Your reference; unique per card and operation."
    )
    metadata = MetadataField(required=False, help_text="Your own data, a JSON object ≤ 16 KB.")


class EarnSerializer(MemberRefSerializer, _OperationFields, StrictSerializer):
    member_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Name for a new member."
    )
    purchase_amount = AmountField(help_text="The purchase amount, in the card's currency.")


class RedeemSerializer(_OperationFields, StrictSerializer):
    amount = AmountField(help_text="The cashback to spend.")
    pin = PinField(required=False)
    member_id = IdField(required=False, help_text="If given, must be the token's member.")


class RefundSerializer(MemberRefSerializer, _OperationFields, StrictSerializer):
    refund_amount = AmountField(help_text="The amount of the purchase refunded.")
    cashback_to_deduct = AmountField(
        required=False, help_text="Cashback to take back instead of the computed amount."
    )
    original_transaction_id = IdField(required=False, help_text="The earning this refund reverses.")


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

    def to_representation(self, entry: LedgerEntry) -> dict:
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

    def to_representation(self, entry: LedgerEntry) -> dict:
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

    def to_representation(self, entry: LedgerEntry) -> dict:
        # Written out, the currency read once: a page renders twenty entries.
        currency = self.context["card"].currency

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

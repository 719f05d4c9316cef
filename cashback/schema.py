"""The OpenAPI declarations of the cashback API's operations (drf-spectacular): each a
decorator its view method wears, so that a view says what it does and this module what
it declares."""

from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from apps_auth.idempotency import IDEMPOTENCY_KEY
from apps_auth.schema import MEMBER_BEARER_CREDENTIALS, MEMBER_CREDENTIALS
from cards.errors import CardInactive
from cashback.errors import (
    AlreadyReversed,
    BelowMinimumPurchase,
    DuplicateReference,
    InsufficientBalance,
    PinNotAllowed,
    RefundExceedsPurchase,
    ReversalWindowClosed,
)
from cashback.models import EntryType
from cashback.serializers import (
    BalanceQuerySerializer,
    BalanceSerializer,
    EarnResultSerializer,
    EarnSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    QuoteResultSerializer,
    QuoteSerializer,
    RedeemResultSerializer,
    RedeemSerializer,
    RefundResultSerializer,
    RefundSerializer,
    ReverseResultSerializer,
    ReverseSerializer,
)
from core.api.schema import documented
from core.api.serializers import envelope, error_responses, examples
from core.errors import NotFound
from members.errors import InvalidPin, MemberConflict, MemberMismatch, PinLocked, PinNotSet
from members.schema import MEMBER_TOKEN

# What balance and history answer besides the errors every read does: both read one member's
# wallet on one card (`cashback.selectors.member_card`).
MEMBER_CARD_ERRORS = error_responses(
    documented(NotFound, "The card or the member is not the app's."), MemberConflict
)


# What earn and quote answer for a card, or a member named by id, that is not the app's (an
# email or a phone that names nobody makes a new member instead).
CARD_OR_MEMBER_ID_NOT_FOUND = documented(
    NotFound, "The card, or the member named by member_id, is not the app's."
)


EARN = extend_schema(
    summary="Earn cashback",
    operation_id="earn_cashback",
    description="Credits the card's percentage of a purchase to the member's wallet, "
    "rounded half-up to the currency's minor unit and capped at the card's "
    "cashback_max_amount. The member is found by member_id, else email, else phone, and "
    "created when neither the email nor the phone is known. On a card that holds cashback, "
    "the cashback is pending until available_at. Send an Idempotency-Key, or a reference, "
    "so that a retry never credits twice.",
    parameters=[IDEMPOTENCY_KEY],
    request=EarnSerializer,
    responses={
        200: envelope(EarnResultSerializer),
        **error_responses(
            CARD_OR_MEMBER_ID_NOT_FOUND,
            DuplicateReference,
            MemberConflict,
            CardInactive,
            BelowMinimumPurchase,
        ),
    },
    examples=examples(
        request={
            "card_id": 10,
            "member_id": 123,
            "purchase_amount": Decimal("50.00"),
            "reference": "ORDER-12345",
            "metadata": {"store_location": "Downtown", "cashier_id": "EMP-001"},
        },
        response={
            "transaction_id": 456,
            "purchase_amount": Decimal("50.000"),
            "cashback_percentage": 5,
            "cashback_earned": Decimal("2.500"),
            "new_balance": Decimal("12.500"),
            "currency": "TND",
            "member_id": 123,
            "card_id": 10,
            "reference": "ORDER-12345",
            "earned_at": "2025-01-15T10:30:00Z",
            "status": "available",
            "available_at": "2025-01-15T10:30:00Z",
            "pending_balance": 0,
            "member_created": False,
            "breakdown": [
                {
                    "source": "card",
                    "rule_id": None,
                    "name": "Premium Cashback Card",
                    "amount": Decimal("2.500"),
                }
            ],
        },
    ),
)

QUOTE = extend_schema(
    summary="Quote an earn",
    operation_id="quote_cashback",
    description="What an earn with this body would credit now, and why, without writing "
    "anything: no member is created, no rule use counted, no budget taken. Show it at the "
    "till before the sale; the earn itself may differ if a budget runs out or a tier "
    "changes in between.",
    request=QuoteSerializer,
    responses={
        200: envelope(QuoteResultSerializer),
        **error_responses(
            CARD_OR_MEMBER_ID_NOT_FOUND,
            MemberConflict,
            CardInactive,
            BelowMinimumPurchase,
        ),
    },
    examples=examples(
        request={
            "card_id": 10,
            "email": "carol@example.com",
            "purchase_amount": Decimal("50.00"),
            "lines": [
                {"sku": "COFFEE-1KG", "category": "coffee", "amount": Decimal("30.00")},
                {"sku": "MUG-01", "category": "kitchen", "amount": Decimal("20.00")},
            ],
        },
        response={
            "cashback": Decimal("5.500"),
            "breakdown": [
                {
                    "source": "card",
                    "rule_id": None,
                    "name": "Premium Cashback Card",
                    "amount": Decimal("2.500"),
                },
                {
                    "source": "rule",
                    "rule_id": 7,
                    "name": "10 % on coffee",
                    "amount": Decimal("3.000"),
                },
            ],
            "cashback_percentage": 5,
            "currency": "TND",
            "tier": None,
            "status": "available",
            "member_id": 123,
        },
    ),
)

REDEEM = extend_schema(
    summary="Redeem cashback",
    operation_id="redeem_cashback",
    description="Debits the member's spendable cashback, oldest first, for a discount. The "
    "member is the one of the member token (X-Member-Token or Authorization: Bearer), "
    "which the member got by a one-time code. A pin is checked when the card allows PIN "
    "redemption; after 5 wrong PINs in a row the member's redeems are locked for 15 "
    "minutes.",
    auth=[MEMBER_CREDENTIALS, MEMBER_BEARER_CREDENTIALS],
    parameters=[IDEMPOTENCY_KEY, MEMBER_TOKEN],
    request=RedeemSerializer,
    responses={
        200: envelope(RedeemResultSerializer),
        **error_responses(
            PinNotAllowed,
            PinNotSet,
            InvalidPin,
            documented(MemberMismatch, "member_id is not the member of the token."),
            documented(NotFound, "The card, or the token's member, is not the app's."),
            DuplicateReference,
            CardInactive,
            InsufficientBalance,
            PinLocked,
        ),
    },
    examples=examples(
        request={
            "card_id": 10,
            "amount": Decimal("5.00"),
            "pin": "1234",
            "reference": "REDEEM-ORDER-12346",
        },
        response={
            "transaction_id": 457,
            "amount_redeemed": Decimal("5.000"),
            "previous_balance": Decimal("12.500"),
            "new_balance": Decimal("7.500"),
            "currency": "TND",
            "member_id": 123,
            "card_id": 10,
            "reference": "REDEEM-ORDER-12346",
            "redeemed_at": "2025-01-15T11:00:00Z",
        },
    ),
)

REFUND = extend_schema(
    summary="Refund cashback",
    operation_id="refund_cashback",
    description="Takes back the cashback of a refunded purchase: that earning's share when "
    "original_transaction_id names it (exact: partial refunds adding up to the purchase "
    "take back exactly its cashback); else the card's rate on refund_amount, or, when "
    "more, what the member's earnings on the card credited for that much purchase (so "
    "purchases earned one by one and refunded as one give back what they earned); or "
    "cashback_to_deduct. Cashback still pending is taken first. The balance never goes "
    "below zero: balance_warning then says what could not be recovered, and a later "
    "reversal of a redemption made before the refund settles it first. Never creates a "
    "member.",
    parameters=[IDEMPOTENCY_KEY],
    request=RefundSerializer,
    responses={
        200: envelope(RefundResultSerializer),
        **error_responses(
            documented(
                NotFound,
                "The card, the member, or the earning named by original_transaction_id "
                "is not the app's.",
            ),
            DuplicateReference,
            MemberConflict,
            CardInactive,
            RefundExceedsPurchase,
        ),
    },
    examples=examples(
        request={
            "card_id": 10,
            "member_id": 123,
            "refund_amount": Decimal("25.00"),
            "reference": "REFUND-ORDER-12345",
        },
        response={
            "transaction_id": 459,
            "cashback_deducted": Decimal("1.250"),
            "cashback_not_recovered": 0,
            "refund_amount": Decimal("25.000"),
            "previous_balance": Decimal("12.500"),
            "new_balance": Decimal("11.250"),
            "currency": "TND",
            "member_id": 123,
            "card_id": 10,
            "reference": "REFUND-ORDER-12345",
            "original_transaction_id": None,
            "balance_warning": None,
            "refunded_at": "2025-01-15T12:00:00Z",
            "pending_deducted": 0,
            "pending_balance": 0,
            "breakdown": None,
        },
    ),
)

REVERSE = extend_schema(
    summary="Reverse a redemption",
    operation_id="reverse_redemption",
    description="Gives back what a redemption took, when the sale it paid for is "
    "cancelled: into the cashback it came from, with that cashback's own expiry date. What "
    "refunds since the redemption could not take back is taken from it first "
    "(recovered_amount), so that a refund and a reversal leave the same balance in either "
    "order. Once per redemption, within the reversal window (72 hours by default). No "
    "member token: the till that redeemed reverses.",
    parameters=[IDEMPOTENCY_KEY],
    request=ReverseSerializer,
    responses={
        200: envelope(ReverseResultSerializer),
        **error_responses(
            documented(
                NotFound, "The card is not the app's, or transaction_id is no redemption on it."
            ),
            DuplicateReference,
            AlreadyReversed,
            ReversalWindowClosed,
        ),
    },
    examples=examples(
        request={
            "card_id": 10,
            "transaction_id": 457,
            "reason": "Sale cancelled",
            "reference": "CANCEL-ORDER-12346",
        },
        response={
            "transaction_id": 460,
            "reversed_transaction_id": 457,
            "amount": Decimal("5.000"),
            "new_balance": Decimal("12.500"),
            "currency": "TND",
            "member_id": 123,
            "card_id": 10,
            "reference": "CANCEL-ORDER-12346",
            "reversed_at": "2025-01-15T13:00:00Z",
            "expired_amount": 0,
            "recovered_amount": 0,
        },
    ),
)

BALANCE = extend_schema(
    summary="Get balance",
    operation_id="get_balance",
    description="The member's cashback on the card: what can be spent now, what is "
    "pending, and when it expires (the soonest instants, each with what expires then; the "
    "instant all of it expires when the member earns nothing more before it too), as of the "
    "instant asked: cashback past its expiry "
    "counts for nothing and held cashback past its available_at is spendable, whether or "
    "not the background worker has written them yet. The member is named by member_id, "
    "else email, else phone (never created). A member without activity on the card has 0.",
    parameters=[BalanceQuerySerializer],
    responses={
        200: envelope(BalanceSerializer),
        **MEMBER_CARD_ERRORS,
    },
    examples=examples(
        response={
            "card_id": 10,
            "member_id": 123,
            "cashback_balance": Decimal("12.500"),
            "pending_balance": 0,
            "next_expiry": {"amount": Decimal("2.500"), "expires_at": "2025-01-31T23:00:00Z"},
            "upcoming_expiries": [
                {"amount": Decimal("2.500"), "expires_at": "2025-01-31T23:00:00Z"},
                {"amount": Decimal("4.000"), "expires_at": "2025-02-28T23:00:00Z"},
                {"amount": Decimal("6.000"), "expires_at": "2025-04-15T10:30:00Z"},
            ],
            "cashback_percentage": 5,
            "reward_system": "cashback",
            "currency": "TND",
            "queried_at": "2025-01-15T10:30:00Z",
            "tier": {
                "name": "Gold",
                "cashback_percentage": 7,
                "qualifying_spend": Decimal("1250.000"),
                "next_tier": "Platinum",
                "spend_to_next": Decimal("3750.000"),
                "retained_until": "2026-01-15T10:30:00Z",
            },
        }
    ),
)

HISTORY = extend_schema(
    summary="Transaction history",
    operation_id="get_history",
    description="The member's entries on the card, newest first, a page at a time. The "
    "member is named by member_id, else email, else phone (never created).",
    parameters=[
        HistoryQuerySerializer,
        OpenApiParameter(
            "type", str, enum=EntryType.values, description="Only entries of this type."
        ),
        OpenApiParameter(
            "created_after",
            OpenApiTypes.DATETIME,
            description="Only entries created at or after this instant (ISO 8601).",
        ),
        OpenApiParameter(
            "created_before",
            OpenApiTypes.DATETIME,
            description="Only entries created at or before this instant (ISO 8601).",
        ),
    ],
    responses={
        200: envelope(HistorySerializer),
        **MEMBER_CARD_ERRORS,
    },
    examples=examples(
        response={
            "card_id": 10,
            "member_id": 123,
            "transactions": [
                {
                    "id": 457,
                    "type": "redemption",
                    "amount": Decimal("-5.000"),
                    "points": 0,
                    "event": "cashback_redeemed",
                    "balance_after": Decimal("7.500"),
                    "purchase_amount": None,
                    "refund_amount": None,
                    "reference": "REDEEM-ORDER-12346",
                    "metadata": {},
                    "created_at": "2025-01-15T11:00:00Z",
                    "pending_amount": 0,
                    "pending_balance_after": 0,
                    "original_transaction_id": None,
                    "breakdown": None,
                },
                {
                    "id": 456,
                    "type": "earning",
                    "amount": Decimal("2.500"),
                    "points": 0,
                    "event": "cashback_earned",
                    "balance_after": Decimal("12.500"),
                    "purchase_amount": Decimal("50.000"),
                    "refund_amount": None,
                    "reference": "ORDER-12345",
                    "metadata": {"store_location": "Downtown"},
                    "created_at": "2025-01-15T10:30:00Z",
                    "pending_amount": 0,
                    "pending_balance_after": 0,
                    "original_transaction_id": None,
                    "breakdown": [
                        {
                            "source": "card",
                            "rule_id": None,
                            "name": "Premium Cashback Card",
                            "amount": Decimal("2.500"),
                        }
                    ],
                },
            ],
            "pagination": {"limit": 20, "offset": 0, "total": 2, "has_more": False},
        }
    ),
)

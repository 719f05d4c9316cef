from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps_auth.idempotency import IDEMPOTENCY_KEY, idempotency_record, idempotent
from apps_auth.permissions import HasCashbackRead, HasCashbackWrite
from apps_auth.schema import MEMBER_CREDENTIALS
from cards.selectors import card_get
from cashback.models import EntryType
from cashback.selectors import entry_history, member_card
from cashback.serializers import (
    BalanceQuerySerializer,
    BalanceSerializer,
    EarnResultSerializer,
    EarnSerializer,
    HistoryItemSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    RedeemResultSerializer,
    RedeemSerializer,
    RefundResultSerializer,
    RefundSerializer,
    ReverseResultSerializer,
    ReverseSerializer,
    timestamp,
)
from cashback.services import cashback_earn, cashback_redeem, cashback_refund, cashback_reverse
from core import money
from core.api.responses import ok
from core.api.serializers import envelope, error_responses, validated
from members.authentication import token_member_id
from members.errors import MemberMismatch


@extend_schema(tags=["Cashback"])
class CashbackViewSet(viewsets.ViewSet):
    """Earn, redeem, refund, reverse, balance and history."""

    @extend_schema(
        summary="Earn cashback",
        description="Credits the card's percentage of a purchase to the member's wallet. "
        "The member is found by member_id, else email, else phone, and created when unknown.",
        parameters=[IDEMPOTENCY_KEY],
        request=EarnSerializer,
        responses={
            200: envelope(EarnResultSerializer),
            **error_responses(400, 401, 403, 404, 409, 422),
        },
    )
    @action(detail=False, methods=["post"], permission_classes=[HasCashbackWrite])
    @idempotent(input=EarnSerializer)
    def earn(self, request, params: EarnSerializer):
        data = params.validated_data
        card = card_get(app=request.auth, card_id=data["card_id"])
        posted = cashback_earn(
            app=request.auth,
            card=card,
            member_ref=params.member_ref(),
            purchase_amount=data["purchase_amount"],
            reference=data.get("reference"),
            metadata=data.get("metadata"),
            idempotency_record=idempotency_record(request),
        )
        data = EarnResultSerializer(posted.entry, context={"card": card}).data
        return ok(data, replayed=posted.replayed)

    @extend_schema(
        summary="Redeem cashback",
        description="Debits the member's wallet. The member is the one of X-Member-Token.",
        auth=[MEMBER_CREDENTIALS],
        parameters=[IDEMPOTENCY_KEY],
        request=RedeemSerializer,
        responses={
            200: envelope(RedeemResultSerializer),
            **error_responses(400, 401, 403, 404, 409, 422, 423),
        },
    )
    @action(detail=False, methods=["post"], permission_classes=[HasCashbackWrite])
    @idempotent(input=RedeemSerializer, subject=token_member_id)
    def redeem(self, request, params: RedeemSerializer):
        member_id = token_member_id(request)
        data = params.validated_data
        if data.get("member_id", member_id) != member_id:
            raise MemberMismatch()
        card = card_get(app=request.auth, card_id=data["card_id"])
        posted = cashback_redeem(
            app=request.auth,
            card=card,
            member_id=member_id,
            amount=data["amount"],
            pin=data.get("pin"),
            reference=data.get("reference"),
            metadata=data.get("metadata"),
            idempotency_record=idempotency_record(request),
        )
        data = RedeemResultSerializer(posted.entry, context={"card": card}).data
        return ok(data, replayed=posted.replayed)

    @extend_schema(
        summary="Refund cashback",
        description="Takes back the cashback of a refunded purchase: the card's rate on "
        "refund_amount, its share of original_transaction_id, or cashback_to_deduct. The balance "
        "never goes below zero; balance_warning says what could not be recovered.",
        parameters=[IDEMPOTENCY_KEY],
        request=RefundSerializer,
        responses={
            200: envelope(RefundResultSerializer),
            **error_responses(400, 401, 403, 404, 409, 422),
        },
    )
    @action(detail=False, methods=["post"], permission_classes=[HasCashbackWrite])
    @idempotent(input=RefundSerializer)
    def refund(self, request, params: RefundSerializer):
        data = params.validated_data
        card = card_get(app=request.auth, card_id=data["card_id"])
        posted = cashback_refund(
            app=request.auth,
            card=card,
            member_ref=params.member_ref(),
            refund_amount=data["refund_amount"],
            cashback_to_deduct=data.get("cashback_to_deduct"),
            original_transaction_id=data.get("original_transaction_id"),
            reference=data.get("reference"),
            metadata=data.get("metadata"),
            idempotency_record=idempotency_record(request),
        )
        data = RefundResultSerializer(posted.entry, context={"card": card}).data
        return ok(data, replayed=posted.replayed)

    @extend_schema(
        summary="Reverse a redemption",
        description="Gives back what a redemption took, when the sale it paid for is "
        "cancelled: into the cashback it came from, with that cashback's own expiry date. Once "
        "per redemption, within the reversal window (72 hours by default). No member token: "
        "the till that redeemed reverses.",
        parameters=[IDEMPOTENCY_KEY],
        request=ReverseSerializer,
        responses={
            200: envelope(ReverseResultSerializer),
            **error_responses(400, 401, 403, 404, 409, 422),
        },
    )
    @action(detail=False, methods=["post"], permission_classes=[HasCashbackWrite])
    @idempotent(input=ReverseSerializer)
    def reverse(self, request, params: ReverseSerializer):
        data = params.validated_data
        card = card_get(app=request.auth, card_id=data["card_id"])
        posted = cashback_reverse(
            app=request.auth,
            card=card,
            transaction_id=data["transaction_id"],
            reason=data.get("reason"),
            reference=data.get("reference"),
            idempotency_record=idempotency_record(request),
        )
        data = ReverseResultSerializer(posted.entry, context={"card": card}).data
        return ok(data, replayed=posted.replayed)

    @extend_schema(
        summary="Get balance",
        parameters=[BalanceQuerySerializer],
        responses={200: envelope(BalanceSerializer), **error_responses(400, 401, 403, 404)},
    )
    @action(detail=False, methods=["get"], permission_classes=[HasCashbackRead])
    def balance(self, request):
        params = validated(BalanceQuerySerializer, request.query_params)
        found = member_card(
            app=request.auth,
            card_id=params.validated_data["card_id"],
            member_ref=params.member_ref(),
        )
        card = found.card
        data = {
            "card_id": card.pk,
            "member_id": found.member_id,
            "cashback_balance": money.quantize(found.balance, card.currency),
            "pending_balance": money.quantize(found.pending_balance, card.currency),
            "next_expiry": None
            if found.next_expiry is None
            else {
                "amount": money.quantize(found.next_expiry[0], card.currency),
                "expires_at": timestamp(found.next_expiry[1]),
            },
            "cashback_percentage": money.plain(card.cashback_percentage),
            "reward_system": card.reward_system,
            "currency": card.currency,
            "queried_at": timestamp(timezone.now()),
        }
        return ok(data)  # already rendered; BalanceSerializer documents it

    @extend_schema(
        summary="Transaction history",
        description="The member's entries on the card, newest first.",
        parameters=[
            HistoryItemSerializer,
            HistoryQuerySerializer,
            OpenApiParameter("type", str, enum=EntryType.values),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
        ],
        responses={200: envelope(HistorySerializer), **error_responses(400, 401, 403, 404)},
    )
    @action(detail=False, methods=["get"], permission_classes=[HasCashbackRead])
    def history(self, request):
        params = validated(HistoryQuerySerializer, request.query_params)
        query = params.validated_data
        found = member_card(
            app=request.auth, card_id=query["card_id"], member_ref=params.member_ref()
        )
        limit, offset = query["limit"], query["offset"]
        page = entry_history(
            member_card=found, filters=request.query_params, limit=limit, offset=offset
        )
        # The item serializer renders each entry; the envelope is put together here rather
        # than through HistorySerializer, which documents it but would copy every nested field.
        item = HistoryItemSerializer(context={"card": found.card})
        return ok(
            {
                "card_id": found.card.pk,
                "member_id": found.member_id,
                "transactions": [item.to_representation(entry) for entry in page.entries],
                "pagination": {
                    "limit": limit,
                    "offset": offset,
                    "total": page.total,
                    "has_more": offset + len(page.entries) < page.total,
                },
            }
        )

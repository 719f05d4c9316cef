from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps_auth.idempotency import idempotency_record, idempotent
from apps_auth.permissions import HasCashbackRead, HasCashbackWrite
from cards.selectors import card_get
from cashback.events import entry_answer
from cashback.schema import BALANCE, EARN, HISTORY, QUOTE, REDEEM, REFUND, REVERSE
from cashback.selectors import entry_history, member_card, tier_status
from cashback.serializers import (
    BalanceQuerySerializer,
    EarnSerializer,
    HistoryItemSerializer,
    HistoryQuerySerializer,
    QuoteResultSerializer,
    QuoteSerializer,
    RedeemSerializer,
    RefundSerializer,
    ReverseSerializer,
    timestamp,
)
from cashback.services import cashback_earn, cashback_redeem, cashback_refund, cashback_reverse
from cashback.services.quote import cashback_quote
from core import money
from core.api.responses import ok
from core.api.serializers import validated
from members.authentication import token_member_id
from members.errors import MemberMismatch


@extend_schema(tags=["Cashback"])
class CashbackViewSet(viewsets.ViewSet):
    """Earn, redeem, refund, reverse, balance and history."""

    @EARN
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
            lines=params.basket(),
            reference=data.get("reference"),
            metadata=data.get("metadata"),
            idempotency_record=idempotency_record(request),
        )
        data = entry_answer(entry=posted.entry, card=card)
        return ok(data, replayed=posted.replayed)

    @QUOTE
    @action(detail=False, methods=["post"], permission_classes=[HasCashbackRead])
    def quote(self, request):
        params = validated(QuoteSerializer, request.data)
        data = params.validated_data
        card = card_get(app=request.auth, card_id=data["card_id"])
        quote = cashback_quote(
            app=request.auth,
            card=card,
            member_ref=params.member_ref(),
            purchase_amount=data["purchase_amount"],
            lines=params.basket(),
        )
        return ok(QuoteResultSerializer(quote, context={"card": card}).data)

    @REDEEM
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
        data = entry_answer(entry=posted.entry, card=card)
        return ok(data, replayed=posted.replayed)

    @REFUND
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
            lines=params.refunded_lines(),
            reference=data.get("reference"),
            metadata=data.get("metadata"),
            idempotency_record=idempotency_record(request),
        )
        data = entry_answer(entry=posted.entry, card=card)
        return ok(data, replayed=posted.replayed)

    @REVERSE
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
        data = entry_answer(entry=posted.entry, card=card)
        return ok(data, replayed=posted.replayed)

    @BALANCE
    @action(detail=False, methods=["get"], permission_classes=[HasCashbackRead])
    def balance(self, request):
        params = validated(BalanceQuerySerializer, request.query_params)
        found = member_card(
            app=request.auth,
            card_id=params.validated_data["card_id"],
            member_ref=params.member_ref(),
        )
        card = found.card
        now = timezone.now()
        tier = tier_status(card=card, member_id=found.member_id, wallet_id=found.wallet_id, at=now)
        upcoming = [
            {"amount": money.quantize(amount, card.currency), "expires_at": timestamp(at)}
            for amount, at in found.upcoming_expiries
        ]
        data = {
            "card_id": card.pk,
            "member_id": found.member_id,
            "cashback_balance": money.quantize(found.balance, card.currency),
            "pending_balance": money.quantize(found.pending_balance, card.currency),
            "next_expiry": upcoming[0] if upcoming else None,
            "upcoming_expiries": upcoming,
            "cashback_percentage": money.plain(card.cashback_percentage),
            "reward_system": card.reward_system,
            "currency": card.currency,
            "queried_at": timestamp(now),
            "tier": tier,
        }
        return ok(data)  # already rendered; BalanceSerializer documents it

    @HISTORY
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

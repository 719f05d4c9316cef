from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps_auth.idempotency import IDEMPOTENCY_KEY, idempotent
from apps_auth.permissions import HasCashbackRead, HasCashbackWrite
from apps_auth.schema import MEMBER_CREDENTIALS
from core.api.responses import ok
from core.api.serializers import envelope, error_responses, validated
from members.authentication import token_member, token_member_id
from members.otp import otp_request, otp_verify
from members.serializers import (
    MemberLookupSerializer,
    MemberSerializer,
    MemberTokenSerializer,
    OtpChallengeSerializer,
    OtpRequestSerializer,
    OtpVerifySerializer,
    PinResultSerializer,
    PinSerializer,
)
from members.services import member_pin_change, member_resolve
from members.tokens import MEMBER_TOKEN_WITHHELD


@extend_schema(tags=["Members"])
class MemberViewSet(viewsets.ViewSet):
    permission_classes = [HasCashbackRead]  # the lookup; the PIN's action asks for more

    @extend_schema(
        summary="Find a member by email or phone",
        description="A till knows a phone or an email, not an id: this answers the app's member "
        "with that email (any case) or that phone (any format), else 404 not_found. Nothing "
        "is created.",
        parameters=[MemberLookupSerializer],
        responses={200: envelope(MemberSerializer), **error_responses(400, 401, 403, 404, 429)},
    )
    def list(self, request):
        params = validated(MemberLookupSerializer, request.query_params)
        member = member_resolve(app=request.auth, ref=params.member_ref())
        return ok(MemberSerializer(member).data)

    @extend_schema(
        summary="Set or change the member's PIN",
        description="The member is the one of X-Member-Token. Changing a PIN in force needs "
        "current_pin; 5 wrong ones in a row lock the PIN for 15 minutes.",
        auth=[MEMBER_CREDENTIALS],
        parameters=[IDEMPOTENCY_KEY],
        request=PinSerializer,
        responses={
            200: envelope(PinResultSerializer),
            **error_responses(400, 401, 403, 404, 409, 423, 429),
        },
    )
    @action(detail=False, methods=["post"], permission_classes=[HasCashbackWrite])
    @idempotent(input=PinSerializer, subject=token_member_id)
    def pin(self, request, params: PinSerializer):
        member = token_member(request)
        member_pin_change(
            member=member,
            pin=params.validated_data["pin"],
            current_pin=params.validated_data.get("current_pin"),
        )
        data = {"member_id": member.pk, "pin_set": True, "changed_at": timezone.now()}
        return ok(PinResultSerializer(data).data)


@extend_schema(tags=["Member authentication"])
class OtpViewSet(viewsets.ViewSet):
    """One-time codes: a member proves who they are and gets a member token for redeem."""

    @extend_schema(
        summary="Send a one-time code",
        description="Sends a 6-digit code to the member by email or SMS, valid 5 minutes. "
        "At most 3 requests per member per 10 minutes, a few codes per address and hour "
        "across all members and apps, and the app's hourly quota of codes; past any of them, "
        "429 throttled with Retry-After and nothing sent. SMS goes to mobile numbers only: "
        "premium-rate, toll-free, fixed-line and other numbers are 400 validation_error.",
        parameters=[IDEMPOTENCY_KEY],
        request=OtpRequestSerializer,
        responses={
            200: envelope(OtpChallengeSerializer),
            **error_responses(400, 401, 403, 404, 409, 429),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="otp/request",
        permission_classes=[HasCashbackWrite],
    )
    @idempotent(input=OtpRequestSerializer)
    def otp_request(self, request, params: OtpRequestSerializer):
        member = member_resolve(app=request.auth, ref=params.member_ref())
        challenge = otp_request(
            app=request.auth, member=member, channel=params.validated_data.get("channel")
        )
        return ok(OtpChallengeSerializer(challenge).data)

    @extend_schema(
        summary="Verify a one-time code",
        description="Trades the code for a member token. A code works once; after 5 wrong "
        "codes the challenge answers 429 too_many_attempts, even to the right code.",
        parameters=[IDEMPOTENCY_KEY],
        request=OtpVerifySerializer,
        responses={
            200: envelope(MemberTokenSerializer),
            **error_responses(400, 401, 403, 404, 409, 429),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="otp/verify",
        permission_classes=[HasCashbackWrite],
    )
    @idempotent(input=OtpVerifySerializer, withheld=MEMBER_TOKEN_WITHHELD)
    def otp_verify(self, request, params: OtpVerifySerializer):
        verified = otp_verify(app=request.auth, **params.validated_data)
        data = {
            "member_token": verified.token.token,
            "token_type": "Bearer",
            "expires_at": verified.token.expires_at,
            "member_id": verified.member.pk,
        }
        return ok(MemberTokenSerializer(data).data)

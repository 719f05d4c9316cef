from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps_auth.idempotency import idempotent
from apps_auth.permissions import HasCashbackRead, HasCashbackWrite
from core.api.responses import ok
from core.api.serializers import validated
from members.authentication import token_member, token_member_id
from members.otp import otp_request, otp_verify
from members.schema import MEMBER_LOOKUP, OTP_REQUEST, OTP_VERIFY, PIN_SET
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

    @MEMBER_LOOKUP
    def list(self, request):
        params = validated(MemberLookupSerializer, request.query_params)
        member = member_resolve(app=request.auth, ref=params.member_ref())
        return ok(MemberSerializer(member).data)

    @PIN_SET
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

    @OTP_REQUEST
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

    @OTP_VERIFY
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

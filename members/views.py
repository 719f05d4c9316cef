from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps_auth.idempotency import IDEMPOTENCY_KEY, idempotent
from apps_auth.permissions import HasCashbackRead, HasCashbackWrite
from apps_auth.schema import MEMBER_BEARER_CREDENTIALS, MEMBER_CREDENTIALS
from core.api.responses import ok
from core.api.schema import documented
from core.api.serializers import envelope, error_responses, examples, validated
from core.errors import InvalidInput, NotFound, Throttled
from members.authentication import token_member, token_member_id
from members.errors import InvalidOtp, InvalidPin, MemberConflict, PinLocked, TooManyAttempts
from members.otp import otp_request, otp_verify
from members.schema import MEMBER_TOKEN
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
        operation_id="find_member",
        description="A till knows a phone or an email, not an id: this answers the app's member "
        "with that email (any case) or that phone (any format), else 404 not_found. Give one "
        "of the two. Nothing is created.",
        parameters=[MemberLookupSerializer],
        responses={
            200: envelope(MemberSerializer),
            **error_responses(
                documented(NotFound, "No member of the app has this email or phone.")
            ),
        },
        examples=examples(
            response={
                "member_id": 123,
                "email": "amira@example.com",
                "phone": "+21620123456",
                "name": "Amira",
                "created_at": "2025-01-10T09:00:00Z",
            }
        ),
    )
    def list(self, request):
        params = validated(MemberLookupSerializer, request.query_params)
        member = member_resolve(app=request.auth, ref=params.member_ref())
        return ok(MemberSerializer(member).data)

    @extend_schema(
        summary="Set or change the member's PIN",
        operation_id="set_pin",
        description="The member is the one of the member token (X-Member-Token or "
        "Authorization: Bearer). Changing a PIN in force needs current_pin; 5 wrong ones in a "
        "row lock the PIN for 15 minutes.",
        auth=[MEMBER_CREDENTIALS, MEMBER_BEARER_CREDENTIALS],
        parameters=[IDEMPOTENCY_KEY, MEMBER_TOKEN],
        request=PinSerializer,
        responses={
            200: envelope(PinResultSerializer),
            **error_responses(
                documented(InvalidInput, "current_pin is missing: the member has a PIN."),
                documented(InvalidPin, "current_pin is wrong."),
                documented(NotFound, "The token's member no longer exists."),
                PinLocked,
            ),
        },
        examples=examples(
            request={"pin": "2468", "current_pin": "1234"},
            response={"member_id": 123, "pin_set": True, "changed_at": "2025-01-15T10:45:00Z"},
        ),
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
        operation_id="request_otp",
        description="Sends a 6-digit code to the member by email or SMS, valid 5 minutes; the "
        "member reads it to the till, which trades it for a member token (Verify a one-time "
        "code). For a test-mode app nothing is sent: the answer carries the code as "
        "test_code. At most 3 requests per member per 10 minutes, a few codes per address and "
        "hour across all members and apps, and the app's hourly quota of codes; past any of them, "
        "429 throttled with Retry-After and nothing sent. SMS goes to mobile numbers only: "
        "premium-rate, toll-free, fixed-line and other numbers are 400 validation_error.",
        parameters=[IDEMPOTENCY_KEY],
        request=OtpRequestSerializer,
        responses={
            200: envelope(OtpChallengeSerializer),
            **error_responses(
                documented(NotFound, "No member of the app has this id, email or phone."),
                MemberConflict,
                documented(
                    Throttled,
                    "Too many codes for this member, address or app for now; nothing was sent.",
                ),
            ),
        },
        examples=examples(
            request={"phone": "+21620123456", "channel": "sms"},
            response={
                "challenge_id": "otp_8f2c1d7e9a",
                "channel": "sms",
                "destination": "+216•••••456",
                "expires_at": "2025-01-15T10:35:00Z",
                "test_code": "482913",
            },
        ),
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
        operation_id="verify_otp",
        description="Trades the code for a member token, valid 15 minutes by default, for "
        "redeem and PIN. A code works once; after 5 wrong codes the challenge answers 429 "
        "too_many_attempts, even to the right code.",
        parameters=[IDEMPOTENCY_KEY],
        request=OtpVerifySerializer,
        responses={
            200: envelope(MemberTokenSerializer),
            **error_responses(
                InvalidOtp,
                documented(NotFound, "No challenge of the app has this challenge_id."),
                TooManyAttempts,
            ),
        },
        examples=examples(
            request={"challenge_id": "otp_8f2c1d7e9a", "code": "482913"},
            response={
                "member_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMifQ.c2ln",
                "token_type": "Bearer",
                "expires_at": "2025-01-15T10:50:00Z",
                "member_id": 123,
            },
        ),
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

"""The OpenAPI declarations of the members API: the member token a request carries, and each
operation's, a decorator its view method wears."""

from drf_spectacular.utils import OpenApiParameter, extend_schema

from apps_auth.idempotency import IDEMPOTENCY_KEY
from apps_auth.schema import MEMBER_BEARER_CREDENTIALS, MEMBER_CREDENTIALS
from core.api.schema import ParameterWithErrors, documented
from core.api.serializers import envelope, error_responses, examples
from core.errors import InvalidInput, NotFound, Throttled
from members.errors import (
    InvalidOtp,
    InvalidPin,
    MemberConflict,
    MemberTokenExpired,
    MemberTokenInvalid,
    MemberTokenMissing,
    PinLocked,
    TooManyAttempts,
)
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

MEMBER_TOKEN = ParameterWithErrors(
    "X-Member-Token",
    {"type": "string", "minLength": 1},
    OpenApiParameter.HEADER,
    description="The member's token (`member_token` from Verify a one-time code). Send it "
    "here or as `Authorization: Bearer …`: one of the two is required (both, differing, are "
    "refused).",
    errors=(
        documented(MemberTokenMissing, "No member token (`details.reason` member_token_missing)."),
        documented(
            MemberTokenExpired,
            "The member token has expired (member_token_expired): sign the member in again.",
        ),
        documented(
            MemberTokenInvalid,
            "The member token is forged, malformed or another app's (member_token_invalid).",
        ),
        documented(
            InvalidInput, "X-Member-Token and Authorization: Bearer carry different tokens."
        ),
    ),
)


MEMBER_LOOKUP = extend_schema(
    summary="Find a member by email or phone",
    operation_id="find_member",
    description="A till knows a phone or an email, not an id: this answers the app's member "
    "with that email (any case) or that phone (any format), else 404 not_found. Give one "
    "of the two. Nothing is created.",
    parameters=[MemberLookupSerializer],
    responses={
        200: envelope(MemberSerializer),
        **error_responses(documented(NotFound, "No member of the app has this email or phone.")),
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

PIN_SET = extend_schema(
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

OTP_REQUEST = extend_schema(
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

OTP_VERIFY = extend_schema(
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

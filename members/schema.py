"""How the OpenAPI document declares the member token a request carries."""

from drf_spectacular.utils import OpenApiParameter

from core.api.schema import ParameterWithErrors, documented
from core.errors import InvalidInput
from members.errors import MemberTokenExpired, MemberTokenInvalid, MemberTokenMissing

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

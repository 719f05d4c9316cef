"""How the OpenAPI document declares the member token a request carries."""

from drf_spectacular.utils import OpenApiParameter

from core.api.schema import ParameterWithErrors, documented
from members.errors import MemberTokenInvalid

MEMBER_TOKEN = ParameterWithErrors(
    "X-Member-Token",
    {"type": "string", "minLength": 1},
    OpenApiParameter.HEADER,
    description="The member's token (`member_token` from Verify a one-time code). Send it "
    "here or as `Authorization: Bearer …`; one of the two is required.",
    errors=(
        documented(
            MemberTokenInvalid,
            "The member token is missing, expired, forged or another app's; "
            "`details.reason` says which.",
        ),
    ),
)

"""The member a request acts for: the one its member token names, sent as `X-Member-Token` or
as `Authorization: Bearer …` (what generated clients send)."""

from core.errors import InvalidInput
from members.models import Member
from members.selectors import member_get
from members.tokens import member_token_member_id


def token_member(request) -> Member:
    """The member of the request's member token, which must be a token of the request's app.

    Raises `MemberTokenInvalid` (401) for a missing, expired, forged or foreign token, and
    `NotFound` if the member is gone.
    """
    cached = getattr(request, "_token_member", None)
    if cached is not None:
        return cached
    request._token_member = member_get(app=request.auth, member_id=token_member_id(request))
    return request._token_member


def token_member_id(request) -> int:
    """The member id of the request's member token, the token authenticated (it is signed for
    the request's app) but the member not read. Raises `MemberTokenInvalid` (401), and
    `InvalidInput` when both headers carry a token and they differ."""
    cached = getattr(request, "_token_member_id", None)
    if cached is None:
        cached = request._token_member_id = member_token_member_id(
            app=request.auth, token=member_token_sent(request)
        )
    return cached


def member_token_sent(request) -> str:
    """The member token in `X-Member-Token` or `Authorization: Bearer`; "" when neither."""
    header = request.headers.get("X-Member-Token", "")
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    bearer = bearer.strip() if scheme.lower() == "bearer" else ""
    if header and bearer and header != bearer:
        message = "X-Member-Token and Authorization: Bearer carry different tokens; send one."
        raise InvalidInput(message, details={"X-Member-Token": [message]})
    return header or bearer

"""The member a request acts for: the one its `X-Member-Token` names."""

from members.models import Member
from members.selectors import member_get
from members.tokens import member_token_member_id


def token_member(request) -> Member:
    """The member of the request's `X-Member-Token`, which must be a token of the request's app.

    Raises `MemberTokenInvalid` (401) for a missing, expired, forged or foreign token, and
    `NotFound` if the member is gone.
    """
    cached = getattr(request, "_token_member", None)
    if cached is not None:
        return cached
    request._token_member = member_get(app=request.auth, member_id=token_member_id(request))
    return request._token_member


def token_member_id(request) -> int:
    """The member id of the request's `X-Member-Token`, the token authenticated (it is signed
    for the request's app) but the member not read. Raises `MemberTokenInvalid` (401)."""
    cached = getattr(request, "_token_member_id", None)
    if cached is None:
        cached = request._token_member_id = member_token_member_id(
            app=request.auth, token=request.headers.get("X-Member-Token", "")
        )
    return cached

"""`X-App-Id` + `X-Api-Key`, as a DRF authentication class."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from apps_auth.selectors import app_authenticate
from apps_auth.tokens import member_token_member_id
from members.models import Member
from members.selectors import member_get


class AppKeyAuthentication(BaseAuthentication):
    """Authenticates the merchant app. `request.user` and `request.auth` are the `App`."""

    www_authenticate_realm = "cashback"

    def authenticate(self, request):
        app_id = request.headers.get("X-App-Id", "")
        api_key = request.headers.get("X-Api-Key", "")
        if not app_id and not api_key:
            return None  # DRF answers 401 through `authenticate_header`
        app = app_authenticate(app_id=app_id, api_key=api_key)
        if app is None:
            raise AuthenticationFailed("The app id or API key is invalid.")
        return app, app

    def authenticate_header(self, request):
        return f'ApiKey realm="{self.www_authenticate_realm}"'


def token_member(request) -> Member:
    """The member of the request's `X-Member-Token`, which must be a token of the request's app.

    Raises `MemberTokenInvalid` (401) for a missing, expired, forged or foreign token, and
    `NotFound` if the member is gone.
    """
    cached = getattr(request, "_token_member", None)
    if cached is not None:
        return cached
    member_id = member_token_member_id(
        app=request.auth, token=request.headers.get("X-Member-Token", "")
    )
    request._token_member = member_get(app=request.auth, member_id=member_id)
    return request._token_member


def token_member_id(request) -> int:
    """The id of the request's token member (authenticating the token); see `token_member`."""
    return token_member(request).pk

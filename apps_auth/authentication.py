"""`X-App-Id` + `X-Api-Key`, as a DRF authentication class."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from apps_auth.selectors import app_authenticate


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

"""How the OpenAPI document declares the credential headers."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

# Security requirement objects, for `extend_schema(auth=[...])` (typed there as names only).
APP_CREDENTIALS: Any = {"AppId": [], "ApiKey": []}
# The member token goes in X-Member-Token or, as clients send a bearer token, in Authorization.
MEMBER_CREDENTIALS: Any = {**APP_CREDENTIALS, "MemberToken": []}
MEMBER_BEARER_CREDENTIALS: Any = {**APP_CREDENTIALS, "MemberBearer": []}


class AppKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps_auth.authentication.AppKeyAuthentication"
    name = ["AppId", "ApiKey", "MemberToken", "MemberBearer"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-App-Id",
                "description": "Your app's public id, e.g. app_3f9c…",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Api-Key",
                "description": "Your app's secret key (test_… or live_…), shown once at creation.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Member-Token",
                "description": "The member's token from Verify a one-time code, for the "
                "operations a member authorises (redeem, PIN).",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "The same member token as `Authorization: Bearer …`, instead of "
                "X-Member-Token (both, differing, are refused).",
            },
        ]

    def get_security_requirement(self, auto_schema):
        return APP_CREDENTIALS

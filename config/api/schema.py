"""How the OpenAPI document declares the credential headers."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

APP_CREDENTIALS = {"AppId": [], "ApiKey": []}
MEMBER_CREDENTIALS = {**APP_CREDENTIALS, "MemberToken": []}


class AppKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "config.api.authentication.AppKeyAuthentication"
    name = ["AppId", "ApiKey", "MemberToken"]

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
                "description": "The member's token (a JWT), for redeem.",
            },
        ]

    def get_security_requirement(self, auto_schema):
        return APP_CREDENTIALS


class EnvelopeAutoSchema(AutoSchema):
    """Every response of this API is an envelope object, never a bare list, lists included."""

    def _is_list_view(self, serializer=None) -> bool:
        return False


def refuse_unknown_request_fields(result, generator, request, public):
    """Request bodies refuse unknown fields (see `StrictSerializer`); the document says so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result

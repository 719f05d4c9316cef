"""How the OpenAPI document describes this API's envelopes and request bodies."""

from drf_spectacular.openapi import AutoSchema


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

"""Base serializers and the response envelopes, as the OpenAPI document describes them."""

import copy
from functools import cache

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


class InputSerializer(serializers.Serializer):
    """Reads a request. Each instance gets shallow copies of the declared fields: DRF's deep
    copy runs every field's `__init__` again, which is a tenth of an earn's CPU. A shallow copy
    is safe for a field without nested fields or mutable defaults: binding sets attributes on
    the copy, and what the copies share (error messages, validators) is only read. The other
    fields are deep-copied, as DRF does."""

    def get_fields(self):
        return {
            name: copy.deepcopy(field) if _holds_state(field) else copy.copy(field)
            for name, field in self._declared_fields.items()
        }


def _holds_state(field) -> bool:
    """Whether copies of `field` could share something they change: nested fields or
    serializers, or a mutable default or initial value."""
    return (
        isinstance(field, serializers.BaseSerializer)
        or hasattr(field, "child")
        or hasattr(field, "child_relation")
        or isinstance(getattr(field, "default", None), (dict, list, set))
        or isinstance(getattr(field, "initial", None), (dict, list, set))
    )


class StrictSerializer(InputSerializer):
    """An input serializer that refuses fields it does not know, such as computed values."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def validated(serializer_class, data) -> serializers.Serializer:
    """The input serializer, validated; a 400 in the envelope otherwise."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorEnvelopeSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = ErrorSerializer()


@cache
def envelope(data_serializer: type[serializers.Serializer]):
    """The success envelope around `data_serializer`, for the OpenAPI document."""
    name = data_serializer.__name__.removesuffix("Serializer")
    return inline_serializer(
        name=f"{name}Envelope",
        fields={"success": serializers.BooleanField(default=True), "data": data_serializer()},
    )


def error_responses(*statuses: int) -> dict:
    return {status: ErrorEnvelopeSerializer for status in statuses}

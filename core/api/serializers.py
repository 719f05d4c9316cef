"""Base serializers and the response envelopes, as the OpenAPI document describes them."""

import copy
from functools import cache
from typing import TypeVar

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

S = TypeVar("S", bound=serializers.Serializer)


class InputSerializer(serializers.Serializer):
    """A serializer that reads requests, with a cheaper copy of its class's fields.

    DRF gives every serializer a deep copy of its class's declared fields, so that binding one
    instance's fields never touches another's; that copy costs a request more CPU than the
    validation itself. A field with no field inside it (no `child`, no nested serializer) holds
    nothing a shallow copy would share and the validation change: only its settings, which it
    only reads. So those are copied shallowly, the others deeply, and each serializer still
    binds fields of its own.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            name: copy.deepcopy(field) if _holds_fields(field) else copy.copy(field)
            for name, field in self._declared_fields.items()
        }


def _holds_fields(field: serializers.Field) -> bool:
    return isinstance(field, serializers.BaseSerializer) or hasattr(field, "child")


class StrictSerializer(InputSerializer):
    """An input serializer that refuses fields it does not know, such as computed values, and
    query parameters it does not know, such as a misspelt filter: a typo never goes unnoticed.
    `also_known` names what others read from the same data (a filter set's fields)."""

    also_known: tuple[str, ...] = ()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields) - set(self.also_known))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class NoQuerySerializer(StrictSerializer):
    """The query of a GET that takes no parameters: any parameter is refused."""


def validated(serializer_class: type[S], data) -> S:
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
    return dict.fromkeys(statuses, ErrorEnvelopeSerializer)

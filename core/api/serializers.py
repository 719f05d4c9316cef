"""Base serializers and the response envelopes, as the OpenAPI document describes them."""

import copy
from functools import cache
from typing import TypeVar

from drf_spectacular.utils import OpenApiExample, inline_serializer
from rest_framework import serializers

from core.api.schema import ErrorDoc, ErrorResponses
from core.errors import DomainError

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
            name: copy.deepcopy(field) if _holds_fields(field) else _shallow_copy(field)
            for name, field in self._declared_fields.items()
        }


def _holds_fields(field: serializers.Field) -> bool:
    if getattr(field, "shares_child", False):
        # A list whose child keeps nothing of a request's while it validates (its fields are
        # only read): every copy of the list may use the one child.
        return False
    return isinstance(field, serializers.BaseSerializer) or hasattr(field, "child")


def _shallow_copy(field: serializers.Field) -> serializers.Field:
    """What `copy.copy` makes of a field (a new instance sharing its attributes' values),
    without the pickle protocol's round about way to it."""
    clone = object.__new__(type(field))
    clone.__dict__.update(field.__dict__)
    return clone


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


@cache
def envelope(data_serializer: type[serializers.Serializer]):
    """The success envelope around `data_serializer`, for the OpenAPI document."""
    name = data_serializer.__name__.removesuffix("Serializer")
    return inline_serializer(
        name=f"{name}Envelope",
        fields={
            "success": serializers.BooleanField(help_text="Always true."),
            "data": data_serializer(),
        },
    )


def error_responses(*errors: type[DomainError] | ErrorDoc) -> dict:
    """The errors an operation answers besides those every operation of its kind does (see
    `core.api.schema.EnvelopeAutoSchema.implied_errors`), for `extend_schema(responses=...)`:
    domain error classes, or `documented(ErrorClass, "what it means here")`."""
    return ErrorResponses.by_status(errors)


def examples(*, request: dict | None = None, response: dict) -> list[OpenApiExample]:
    """An operation's example: its request body (if it takes one) and its success's `data`."""
    shown = [
        OpenApiExample("Success", value={"success": True, "data": response}, response_only=True)
    ]
    if request is not None:
        shown.insert(0, OpenApiExample("Request", value=request, request_only=True))
    return shown

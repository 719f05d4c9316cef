"""Serializer fields for the contract's value rules, shared by every endpoint."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.money import MAX_AMOUNT

MAX_ID = 2**63 - 1
METADATA_MAX_BYTES = 16 * 1024
# Numbers as text take ASCII digits only: Python's int() and Decimal() would read "٥٠" and
# "５０" as 50, which no till means.
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_INTEGER_TEXT = re.compile(r"-?[0-9]+(\.0*)?")


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as DRF's DateTimeField renders it under TIME_ZONE = UTC;
    written out because a history page renders twenty of them."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class WholeNumberField(serializers.IntegerField):
    """An integer: a JSON integer or a string of ASCII digits; never a bool or a fraction."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, Decimal) and data != data.to_integral()):
            self.fail("invalid")
        if isinstance(data, str) and not _INTEGER_TEXT.fullmatch(data.strip()):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(WholeNumberField):
    """A positive integer id; out-of-range ids are a 400, never a database error."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


# An amount in a request: an exact decimal number, or the same as a string, so that a client
# whose numbers are binary floats can still send an exact value ("10.100").
_AMOUNT_NUMBER: dict[str, Any] = {
    "type": "number",
    "format": "decimal",
    "minimum": 0,
    "exclusiveMinimum": True,
    "maximum": int(MAX_AMOUNT),
    "description": "A JSON number, read as an exact decimal: greater than 0, at most "
    "1000000000, with no more decimal places than the card's currency has (TND 3, "
    "EUR 2, JPY 0).",
}
_AMOUNT_TEXT: dict[str, Any] = {
    "type": "string",
    "format": "decimal",
    "pattern": r"^[0-9]+(\.[0-9]+)?$",
    "description": 'The same amount as a string of digits, e.g. "50.00": exact in '
    "any client, whatever its numbers.",
}
AMOUNT_IN_SCHEMA = {"oneOf": [_AMOUNT_NUMBER, _AMOUNT_TEXT]}
# An amount that may be 0 (a tier's threshold).
AMOUNT_OR_ZERO_IN_SCHEMA = {
    "oneOf": [
        {
            **_AMOUNT_NUMBER,
            "exclusiveMinimum": False,
            "description": "A JSON number, read as an exact decimal: at least 0, at most "
            "1000000000, with no more decimal places than the card's currency has.",
        },
        _AMOUNT_TEXT,
    ]
}
# An amount or a rate in a response: an exact JSON number (`12.500`), for a decimal type.
NUMBER_OUT_SCHEMA = {"type": "number", "format": "decimal"}


@extend_schema_field(AMOUNT_IN_SCHEMA)
class AmountField(serializers.Field):
    """An amount of money: a JSON number or a numeric string, > 0 and ≤ 1,000,000,000.

    Read as a `Decimal`, never a float. Decimal places are checked against the card's currency
    by the service, which knows the card. Output is the `Decimal` itself, an exact JSON number.
    """

    default_error_messages = {
        "invalid": "A number is required.",
        "not_positive": "Must be greater than 0.",
        "too_large": "Must be at most 1000000000.",
    }

    zero_allowed = False

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, Decimal, str)):
            self.fail("invalid")
        if isinstance(data, str):
            data = data.strip()
            if not _DECIMAL_TEXT.fullmatch(data):
                self.fail("invalid")
        try:
            amount = Decimal(data)
        except InvalidOperation:
            self.fail("invalid")
        if not amount.is_finite():
            self.fail("invalid")
        if amount < 0 or (amount == 0 and not self.zero_allowed):
            self.fail("not_positive")
        if amount > MAX_AMOUNT:
            self.fail("too_large")
        return amount

    def to_representation(self, value):
        return value


@extend_schema_field(AMOUNT_OR_ZERO_IN_SCHEMA)
class AmountOrZeroField(AmountField):
    """An amount as `AmountField` reads it, 0 included."""

    zero_allowed = True


@extend_schema_field(NUMBER_OUT_SCHEMA)
class NumberOutField(serializers.ReadOnlyField):
    """A `Decimal` rendered as an exact JSON number (amounts, rates)."""


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.Field):
    """A JSON object of at most 16 KB. Numbers in it are kept as JSON numbers."""

    default_error_messages = {
        "not_object": "Must be a JSON object.",
        "too_large": f"Must be at most {METADATA_MAX_BYTES} bytes.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_object")
        try:
            data = _plain_json(data, depth=0)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if len(json.dumps(data, separators=(",", ":")).encode()) > METADATA_MAX_BYTES:
            self.fail("too_large")
        return data

    def to_representation(self, value):
        return value


METADATA_MAX_DEPTH = 16


def _plain_json(value, *, depth: int):
    """Metadata is the merchant's own data, not money: decimals in it become JSON floats."""
    if depth > METADATA_MAX_DEPTH:
        raise ValueError(f"Must be nested at most {METADATA_MAX_DEPTH} levels deep.")
    if isinstance(value, Decimal):
        number = float(value)
        if number in (float("inf"), float("-inf")):
            raise ValueError("Numbers must be finite.")
        return number
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Text must not contain NUL characters.")
    if isinstance(value, dict):
        return {
            _plain_json(key, depth=depth + 1): _plain_json(item, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_plain_json(item, depth=depth + 1) for item in value]
    return value

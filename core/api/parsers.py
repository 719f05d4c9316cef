import json
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number this API accepts")


class DecimalJSONParser(JSONParser):
    """JSON with fractional numbers read as `Decimal`, never float; NaN and Infinity refused."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            # DRF reads the body through Django, which refuses one past
            # DATA_UPLOAD_MAX_MEMORY_SIZE (see the exception handler).
            raw = stream.read() if stream is not None else b""
            data = json.loads(
                raw.decode(encoding),
                parse_float=Decimal,
                parse_constant=_refuse_constant,
            )
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        return data

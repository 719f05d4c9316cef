import codecs
import json
import re
from decimal import Decimal

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# The charsets a JSON body is read in: UTF-8 (RFC 8259), and UTF-16, UTF-32 and Latin-1 that
# older clients send. Any other codec is refused: some are not text (rot13, base64, zlib),
# others can decode to text no database can store (utf-7, unicode_escape).
TEXT_CHARSETS = frozenset(
    codecs.lookup(name).name
    for name in (
        *("utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"),
        *("ascii", "latin-1"),
    )
)
# A JSON escape of a UTF-16 surrogate: the only way a lone surrogate (which no database
# column can store) gets into a parsed body.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number this API accepts")


def _object(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are unique: `{"amount": 1, "amount": 9000}` means nothing."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return obj


def _has_lone_surrogate(value) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


class DecimalJSONParser(JSONParser):
    """JSON with fractional numbers read as `Decimal`, never float; NaN and Infinity refused.

    Refused as a parse error too: a charset other than `TEXT_CHARSETS`, an object with a key
    twice, and a lone surrogate (`"\\ud800"`) anywhere, which is not text any database column
    could hold (the charsets read never decode to one; only a JSON escape can make one).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        _, params = parse_header_parameters(media_type or "")
        encoding = params.get("charset") or settings.DEFAULT_CHARSET
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            codec = None
        if codec not in TEXT_CHARSETS:
            raise ParseError(
                f"The charset {encoding!r} is not one this API reads; send UTF-8 JSON."
            )
        try:
            # DRF reads the body through Django, which refuses one past
            # DATA_UPLOAD_MAX_MEMORY_SIZE (see the exception handler).
            raw = stream.read() if stream is not None else b""
            text = raw.decode(codec)
        except UnicodeError as exc:
            raise ParseError(f"The body is not valid {encoding}: {exc}") from None
        try:
            data = json.loads(
                text,
                parse_float=Decimal,
                parse_constant=_refuse_constant,
                object_pairs_hook=_object,
            )
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
            raise ParseError("The body holds a lone UTF-16 surrogate (such as \\ud800): not text.")
        return data

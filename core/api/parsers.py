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

# The deepest a body may nest objects and arrays, the body itself being the first level. Every
# reader of a body (the decoder, the checks below, validation, the request's digest) then walks
# a shallow value; the limit is found in the text, before any of them runs.
MAX_DEPTH = 32
# What the nesting depends on: brackets, and the quotes and backslashes that say whether a
# bracket is inside a string.
_STRUCTURE = re.compile(r'[\\"\[\]{}]')


def _too_deep(text: str) -> bool:
    """Whether the JSON text nests more than MAX_DEPTH objects and arrays, without decoding it:
    one pass over its brackets, quotes and backslashes (a bracket inside a string is text, a
    backslash in a string escapes the character after it). Linear in the text whatever it
    holds. A malformed text may be misjudged, and is refused either way."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return False
    depth, in_string, escaped = 0, False, -1
    for found in _STRUCTURE.finditer(text):
        at, char = found.start(), found.group()
        if at == escaped:
            continue
        if in_string:
            if char == "\\":
                escaped = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


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
    # A loop over what is left to look at rather than a recursion: no depth runs out of stack.
    pending = [value]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


class DecimalJSONParser(JSONParser):
    """JSON with fractional numbers read as `Decimal`, never float; NaN and Infinity refused.

    Refused as a parse error too: a charset other than `TEXT_CHARSETS`, a body nested deeper
    than `MAX_DEPTH`, an object with a key twice, and a lone surrogate (`"\\ud800"`) anywhere,
    which is not text any database column could hold (the charsets read never decode to one;
    only a JSON escape can make one).
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
        if _too_deep(text):
            raise ParseError(
                f"The body is nested deeper than {MAX_DEPTH} levels of objects and arrays."
            )
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

"""A digest of a JSON-like value in which equal values digest alike: 50, 50.0 and 50.00 are one
number, and object keys are sorted. Requests are compared by it to tell a retry from a new one.

The digest is of the value's canonical text: compact, key-sorted JSON with each number written
as `{"#": "<the number, normalised>"}`. Kept fingerprints were taken of exactly that text, so it
may not change. It is written by a loop that keeps its place in each enclosing object or array
on a list, not by recursion (nor by `json.dumps`, which recurses): a digest is also taken of
values that never passed the parser's depth limit, and no depth may run out of stack.
"""

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from operator import itemgetter
from typing import Any

_Entries = Iterator[tuple[str, Any]]  # each value of a container with the text before it
_by_key = itemgetter(0)
# A string as JSON, as `json.dumps(text, ensure_ascii=False)` writes it: the encoder's own
# function for strings (in C), which `JSONEncoder.encode` calls for one after its checks.
_string = json.encoder.encode_basestring


def _scalar(value) -> str | None:
    """The canonical text of a value that holds no other; None for an object or an array."""
    if type(value) is str:  # the most of them: keys' values, a basket's SKUs
        return _string(value)
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        number = Decimal(value)
        return f'{{"#":{_string(format(number.normalize(), "f") if number else "0")}}}'
    if isinstance(value, datetime):
        # One instant, however its zone was written: "10:00+01:00" is "09:00Z".
        instant = value.astimezone(UTC) if value.tzinfo else value
        return f'{{"@":{_string(instant.isoformat())}}}'
    if isinstance(value, date | time):
        return f'{{"@":{_string(value.isoformat())}}}'
    if isinstance(value, dict | list | tuple):
        return None
    raise TypeError(f"Cannot digest {type(value).__name__}")


def _entries(container: dict | list | tuple) -> tuple[str, _Entries, str]:
    """How a container opens, its values each with the text before it, how it closes."""
    if isinstance(container, dict):
        # Keys as text (the last of keys equal as text wins), sorted.
        pairs = sorted({str(key): item for key, item in container.items()}.items(), key=_by_key)
        entries = (
            (f"{',' if i else ''}{_string(key)}:", item) for i, (key, item) in enumerate(pairs)
        )
        return "{", entries, "}"
    return "[", ((("," if i else ""), item) for i, item in enumerate(container)), "]"


def _canonical_text(value) -> str:
    parts: list[str] = []
    # Around the container being written, outermost first, each enclosing one: where it
    # stopped, how it closes, its id.
    enclosing: list[tuple[_Entries, str, int]] = []
    inside: set[int] = set()  # the ids of the container being written and those around it
    entries: _Entries = iter([("", value)])
    closing, container_id = "", 0
    while True:
        for before, item in entries:
            parts.append(before)
            text = _scalar(item)
            if text is not None:
                parts.append(text)
                continue
            if id(item) in inside:
                raise ValueError("The value contains itself.")
            enclosing.append((entries, closing, container_id))
            opening, entries, closing = _entries(item)
            container_id = id(item)
            inside.add(container_id)
            parts.append(opening)
            break  # into the container; its enclosing one resumes where it stopped
        else:
            parts.append(closing)
            inside.discard(container_id)
            if not enclosing:
                return "".join(parts)
            entries, closing, container_id = enclosing.pop()


def digest(value) -> str:
    return hashlib.sha256(_canonical_text(value).encode()).hexdigest()

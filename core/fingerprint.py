"""A digest of a JSON-like value in which equal values digest alike: 50, 50.0 and 50.00 are one
number, and object keys are sorted. Requests are compared by it to tell a retry from a new one."""

import hashlib
import json
from decimal import Decimal


def _canonical(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        number = Decimal(value)
        return {"#": format(number.normalize(), "f") if number else "0"}
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    raise TypeError(f"Cannot digest {type(value).__name__}")


def digest(value) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()

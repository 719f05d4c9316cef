"""Money has one home: minor units from the currency, half-up rounding, the amount rules."""

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision, is_currency

MAX_AMOUNT = Decimal("1000000000")
HUNDRED = Decimal(100)


def is_known_currency(code: str) -> bool:
    return len(code) == 3 and code.isupper() and is_currency(code)


@lru_cache(maxsize=256)  # bounded: whatever the code, the cache stays small
def minor_digits(currency: str) -> int:
    """Digits after the decimal point of the ISO 4217 currency (TND 3, EUR 2, JPY 0)."""
    return get_currency_precision(currency)


@lru_cache(maxsize=256)  # a Decimal is immutable; a history page quantizes a hundred amounts
def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_digits(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """The amount rounded half-up to the currency's minor unit."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def has_valid_places(amount: Decimal, currency: str) -> bool:
    """True when the amount needs no more decimal places than the currency has."""
    return amount == amount.quantize(quantum(currency))


def percentage_of(amount: Decimal, percentage: Decimal, currency: str) -> Decimal:
    """`amount × percentage / 100`, rounded half-up to the minor unit."""
    return quantize(amount * percentage / HUNDRED, currency)


def cashback_for(
    amount: Decimal, percentage: Decimal, currency: str, cap: Decimal | None
) -> Decimal:
    """Cashback on an amount: the percentage, rounded half-up, then capped at `cap`."""
    cashback = percentage_of(amount, percentage, currency)
    return cashback if cap is None else min(cashback, cap)


def plain(number: Decimal) -> Decimal:
    """A decimal without trailing zeros or an exponent, for rates such as 5 or 2.5."""
    normalized = number.normalize()
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral() else normalized


def allocate(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """`total` split in proportion to `weights`, each part in whole minor units, the parts
    adding up to `total` exactly: each part rounded down, then the minor units left given one
    each to the parts that lost most to the rounding (the largest remainders, the first on a
    tie). Zero weights get nothing; all-zero weights, nothing at all."""
    whole = sum(weights, Decimal(0))
    if whole <= 0 or total == 0:
        return [Decimal(0) for _ in weights]
    unit = quantum(currency)
    exact = [total * weight / whole for weight in weights]
    parts = [(share / unit).to_integral_value(rounding=ROUND_FLOOR) * unit for share in exact]
    left = int((total - sum(parts, Decimal(0))) / unit)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[:left]:
        parts[i] += unit
    return [quantize(part, currency) for part in parts]

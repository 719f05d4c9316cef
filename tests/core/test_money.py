from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import money


@pytest.mark.parametrize(
    ("currency", "digits", "quantum"),
    [("JPY", 0, Decimal("1")), ("EUR", 2, Decimal("0.01")), ("TND", 3, Decimal("0.001"))],
)
def test_minor_digits_come_from_the_currency(currency, digits, quantum):
    assert money.minor_digits(currency) == digits
    assert money.quantum(currency) == quantum


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.5", "JPY", "3"),
        ("3.5", "JPY", "4"),
        ("2.4999", "JPY", "2"),
        ("0.125", "EUR", "0.13"),
        ("0.135", "EUR", "0.14"),
        ("0.1249", "EUR", "0.12"),
        ("0.0005", "TND", "0.001"),
        ("1.2345", "TND", "1.235"),
        ("1.2344", "TND", "1.234"),
    ],
)
def test_quantize_rounds_half_up_to_the_minor_unit(amount, currency, expected):
    result = money.quantize(Decimal(amount), currency)
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -money.minor_digits(currency)


@pytest.mark.parametrize(
    ("amount", "currency", "valid"),
    [
        ("10", "JPY", True),
        ("10.5", "JPY", False),
        ("10.10", "EUR", True),
        ("10.101", "EUR", False),
        ("10.001", "TND", True),
        ("10.0001", "TND", False),
        ("10.0000", "TND", True),
    ],
)
def test_has_valid_places_follows_the_currency(amount, currency, valid):
    assert money.has_valid_places(Decimal(amount), currency) is valid


def test_cashback_is_the_rounded_percentage():
    assert money.cashback_for(Decimal("50"), Decimal("5"), "TND", None) == Decimal("2.500")
    assert money.cashback_for(Decimal("0.01"), Decimal("5"), "TND", None) == Decimal("0.001")
    assert money.cashback_for(Decimal("0.009"), Decimal("5"), "TND", None) == Decimal("0.000")
    assert money.cashback_for(Decimal("10.01"), Decimal("12.5"), "EUR", None) == Decimal("1.25")
    assert money.cashback_for(Decimal("199"), Decimal("1.5"), "JPY", None) == Decimal("3")


def test_cashback_is_capped_after_rounding():
    assert money.cashback_for(Decimal("100000"), Decimal("5"), "TND", Decimal("1000")) == Decimal(
        "1000"
    )
    assert money.cashback_for(Decimal("20"), Decimal("5"), "TND", Decimal("1000")) == Decimal(
        "1.000"
    )


def test_plain_drops_trailing_zeros_without_an_exponent():
    assert str(money.plain(Decimal("5.0000"))) == "5"
    assert str(money.plain(Decimal("10.0000"))) == "10"
    assert str(money.plain(Decimal("100"))) == "100"
    assert str(money.plain(Decimal("2.5000"))) == "2.5"


def test_unknown_currency_is_refused():
    assert money.is_known_currency("TND")
    assert not money.is_known_currency("ZZZ")
    assert not money.is_known_currency("tnd")


@given(
    amount=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000000000"), places=3),
    percentage=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100"), places=4),
)
def test_cashback_never_exceeds_the_purchase_nor_misses_by_half_a_unit(amount, percentage):
    cashback = money.cashback_for(amount, percentage, "TND", None)
    exact = amount * percentage / 100
    assert cashback <= money.quantize(amount, "TND")
    assert abs(cashback - exact) <= Decimal("0.0005")
    assert money.has_valid_places(cashback, "TND")

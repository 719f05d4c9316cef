"""Lists go to PostgreSQL as an array's text, which the statement casts, and read back the
same; anything that text would have to quote is refused rather than sent."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from core.rows import array_text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "cast", "expected"),
    [
        ([1, 2, 2**62], "bigint[]", [1, 2, 2**62]),
        ([], "bigint[]", []),
        ([Decimal("1.500"), Decimal("-0.001"), Decimal("1E+3")], "numeric[]",
         [Decimal("1.500"), Decimal("-0.001"), Decimal("1E+3")]),
        ([date(1, 1, 1), date(2026, 12, 7)], "date[]", [date(1, 1, 1), date(2026, 12, 7)]),
        (["ever", "day", "week"], "varchar[]", ["ever", "day", "week"]),
    ],
)  # fmt: skip
def test_an_array_s_text_reads_back_as_the_list(values, cast, expected):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %(values)s::{cast}", {"values": array_text(values)})
        assert cursor.fetchone()[0] == expected


@pytest.mark.parametrize("value", ["a,b", "{1}", 'quote"d', "two words", "", "NULL", "null", True])
def test_what_an_array_s_text_would_quote_is_refused(value):
    with pytest.raises(ValueError, match="no plain element"):
        array_text([1, value])

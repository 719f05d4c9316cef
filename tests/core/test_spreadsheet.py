from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.spreadsheet import spreadsheet_cell


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "＝1+1", "-2.500"],
)
def test_text_that_starts_like_a_formula_is_prefixed_with_a_quote(text):
    assert spreadsheet_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["ORDER-1", "a=b", " plain", "", '{"k": "=1"}'])
def test_other_text_is_left_as_it_is(text):
    assert spreadsheet_cell(text) == text


def test_numbers_and_timestamps_stay_what_they_are():
    now = datetime.now(tz=UTC)
    assert spreadsheet_cell(Decimal("-2.500")) == Decimal("-2.500")
    assert spreadsheet_cell(-3) == -3
    assert spreadsheet_cell(now) is now
    assert spreadsheet_cell(None) == ""
    assert spreadsheet_cell(True) == "True"

"""Cells for files that people open in a spreadsheet (CSV exports).

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or with a tab or a line break
before one) as a formula: text that a merchant, a member or a staff user chose could make
Finance's spreadsheet fetch a URL carrying other cells, or run a command. Such text is written
with a leading `'`, which spreadsheets read as "this is text" (OWASP, CSV injection). Numbers
are written as the numbers they are, so `-2.500` stays a negative amount.
"""

from datetime import date, datetime
from decimal import Decimal

# The ASCII ones OWASP names, line feed, and their full-width forms, which some spreadsheets
# read as the ASCII ones.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def spreadsheet_cell(value: object) -> object:
    """The value as a CSV cell: numbers and timestamps as they are, None as an empty cell,
    anything else as text that no spreadsheet takes for a formula."""
    if value is None:
        return ""
    if isinstance(value, int | Decimal | datetime | date) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text

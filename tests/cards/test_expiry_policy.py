"""A lot's expiry by its card's policy (`Card.lot_expires_at`): rolling days of elapsed time, the
end of the rolling date's month, or the end of a fixed day of the year, calendar dates read in the
card's time zone; and the day a fixed policy names."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from cards.models import Card, ExpiryPolicy, validate_month_day

PARIS = ZoneInfo("Europe/Paris")


def card(policy=ExpiryPolicy.ROLLING, days=None, date=None, zone="Europe/Paris", inactivity=None):
    return Card(
        cashback_expiry_policy=policy,
        cashback_expiry_days=days,
        cashback_expiry_date=date,
        cashback_inactivity_days=inactivity,
        time_zone=zone,
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_rolling_counts_whole_days_of_elapsed_time_across_a_clock_change():
    # Given in the card's zone before the spring change (11:00 UTC): 30 days later is 720
    # hours later, 13:00 in Paris then, not the same wall-clock time (an hour less).
    available_at = datetime(2025, 3, 15, 12, 0, tzinfo=PARIS)
    expires_at = card(days=30).lot_expires_at(available_at)
    assert expires_at == utc(2025, 4, 14, 11, 0)
    assert expires_at.utcoffset() == timedelta(0)
    autumn = datetime(2025, 10, 20, 12, 0, tzinfo=PARIS)
    assert card(days=10).lot_expires_at(autumn) == utc(2025, 10, 30, 10, 0)


def test_without_expiry_days_a_rolling_or_end_of_month_lot_never_expires():
    assert card().lot_expires_at(utc(2025, 1, 1)) is None
    assert card(ExpiryPolicy.END_OF_MONTH).lot_expires_at(utc(2025, 1, 1)) is None


@pytest.mark.parametrize(
    ("available_at", "days", "expires_at"),
    [
        # The end of March in Paris is in summer time (the change is on the 30th).
        (utc(2025, 3, 1, 10), 30, utc(2025, 3, 31, 22)),
        # The end of October is in winter time (the change is on the 26th).
        (utc(2025, 10, 1, 10), 30, utc(2025, 10, 31, 23)),
        # A rolling date already in April in Paris (00:30), though still March 31 in UTC.
        (utc(2025, 3, 1, 22, 30), 30, utc(2025, 4, 30, 22)),
        # A rolling date on the 31st itself ends that day.
        (utc(2025, 1, 21, 12), 10, utc(2025, 1, 31, 23)),
        # February: 29 days in a leap year, 28 otherwise.
        (utc(2028, 2, 10, 12), 10, utc(2028, 2, 29, 23)),
        (utc(2027, 2, 10, 12), 10, utc(2027, 2, 28, 23)),
        # A rolling date at the very first instant of a month is in that month.
        (utc(2025, 5, 1, 22), 30, utc(2025, 6, 30, 22)),
    ],
)
def test_end_of_month_is_the_last_instant_of_the_rolling_dates_month_in_the_cards_zone(
    available_at, days, expires_at
):
    found = card(ExpiryPolicy.END_OF_MONTH, days=days).lot_expires_at(available_at)
    assert found == expires_at
    assert found.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("date", "available_at", "days", "expires_at"),
    [
        # Later this year.
        ("12-31", utc(2025, 6, 1, 10), None, utc(2025, 12, 31, 23)),
        # The day already passed this year: next year's.
        ("03-31", utc(2025, 6, 1, 10), None, utc(2026, 3, 31, 22)),
        # The day itself: it ends the same day (0 days at least).
        ("06-01", utc(2025, 6, 1, 10), None, utc(2025, 6, 1, 22)),
        # Spendable at the instant that day ends in Paris: next year's.
        ("06-01", utc(2025, 6, 1, 22), None, utc(2026, 6, 1, 22)),
        # At least the expiry days after: this year's day comes too soon.
        ("06-15", utc(2025, 6, 1, 10), 30, utc(2026, 6, 15, 22)),
        ("07-15", utc(2025, 6, 1, 10), 30, utc(2025, 7, 15, 22)),
        # The days of the clock changes: 23 and 25 hours long.
        ("03-30", utc(2025, 3, 1), None, utc(2025, 3, 30, 22)),
        ("10-26", utc(2025, 10, 1), None, utc(2025, 10, 26, 23)),
        # February 28 in a leap year is not its last day.
        ("02-28", utc(2028, 1, 1), None, utc(2028, 2, 28, 23)),
    ],
)
def test_fixed_date_is_the_end_of_the_first_such_day_at_least_the_expiry_days_after(
    date, available_at, days, expires_at
):
    found = card(ExpiryPolicy.FIXED_DATE, days=days, date=date).lot_expires_at(available_at)
    assert found == expires_at
    assert found.utcoffset() == timedelta(0)


def test_fixed_date_reads_the_day_in_the_cards_zone():
    available_at = utc(2025, 6, 1)
    assert card(ExpiryPolicy.FIXED_DATE, date="12-31", zone="Africa/Tunis").lot_expires_at(
        available_at
    ) == utc(2025, 12, 31, 23)
    assert card(ExpiryPolicy.FIXED_DATE, date="12-31", zone="Asia/Tokyo").lot_expires_at(
        available_at
    ) == utc(2025, 12, 31, 15)


def test_inactivity_is_the_cards_days_after_an_earning_or_never():
    earned_at = datetime(2025, 3, 15, 12, 0, tzinfo=PARIS)
    assert card(inactivity=30).wallet_inactive_at(earned_at) == utc(2025, 4, 14, 11, 0)
    assert card().wallet_inactive_at(earned_at) is None


@pytest.mark.parametrize("value", ["01-01", "02-28", "12-31"])
def test_a_fixed_day_is_a_day_every_year_has(value):
    validate_month_day(value)


@pytest.mark.parametrize("value", ["02-29", "13-01", "04-31", "1-01", "+1-01", " 1-01", "0101"])
def test_a_fixed_day_other_than_mm_dd_is_refused(value):
    with pytest.raises(ValidationError):
        validate_month_day(value)

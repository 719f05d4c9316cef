from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from cashback.models import EntryType, LedgerEntry


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 datetime, converted to UTC: PostgreSQL refuses some offsets Python accepts
    (such as -22:07), and a date at the edge of the calendar cannot move at all."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a date and time within the calendar.") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class LedgerEntryFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(field_name="entry_type", choices=EntryType.choices)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = LedgerEntry
        fields = ["type", "created_after", "created_before"]

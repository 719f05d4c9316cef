import django_filters

from cashback.models import EntryType, LedgerEntry


class LedgerEntryFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(field_name="entry_type", choices=EntryType.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = LedgerEntry
        fields = ["type", "created_after", "created_before"]

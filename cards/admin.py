from django import forms
from django.contrib import admin, messages

from cards.models import Card
from core import money


class CardForm(forms.ModelForm):
    class Meta:
        model = Card
        fields = [
            "app",
            "unique_identifier",
            "name",
            "description",
            "cashback_percentage",
            "cashback_min_amount",
            "cashback_max_amount",
            "cashback_holding_days",
            "cashback_expiry_days",
            "cashback_expiry_policy",
            "cashback_expiry_date",
            "cashback_inactivity_days",
            "tier_period_days",
            "tier_retention_days",
            "time_zone",
            "currency",
            "allows_pin_redemption",
            "is_active",
        ]

    def clean(self):
        cleaned = super().clean() or {}
        # Read-only (a card with wallets): the card's own currency bounds the amounts.
        currency = cleaned.get("currency") if "currency" in self.fields else self.instance.currency
        if currency and money.is_known_currency(currency):
            for field in ("cashback_min_amount", "cashback_max_amount"):
                value = cleaned.get(field)
                if value is not None and not money.has_valid_places(value, currency):
                    digits = money.minor_digits(currency)
                    self.add_error(field, f"At most {digits} decimal places for {currency}.")
        return cleaned


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    form = CardForm
    list_display = [
        "id",
        "name",
        "unique_identifier",
        "app",
        "cashback_percentage",
        "cashback_min_amount",
        "cashback_max_amount",
        "currency",
        "allows_pin_redemption",
        "is_active",
    ]
    list_editable = ["is_active"]
    list_filter = ["is_active", "currency", "allows_pin_redemption", "app"]
    search_fields = ["name", "=unique_identifier"]
    list_select_related = ["app"]
    actions = ["activate", "deactivate"]

    def get_readonly_fields(self, request, obj=None):
        # Wallets hold amounts in the card's currency; the model refuses a change anyway.
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.wallets.exists():
            fields.append("currency")
        return fields

    def has_delete_permission(self, request, obj=None):
        # A card with wallets has history: it is deactivated, never deleted.
        if obj is not None and obj.wallets.exists():
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        used = queryset.filter(wallets__isnull=False).distinct()
        if used.exists():
            self.message_user(
                request,
                "Cards with wallets are kept; deactivate them instead.",
                messages.ERROR,
            )
        queryset.exclude(pk__in=used.values("pk")).delete()

    @admin.action(description="Activate selected cards", permissions=["change"])
    def activate(self, request, queryset):
        queryset.update(is_active=True)

    @admin.action(description="Deactivate selected cards", permissions=["change"])
    def deactivate(self, request, queryset):
        queryset.update(is_active=False)

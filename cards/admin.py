from django.contrib import admin

from cards.models import Card


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
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
    list_filter = ["is_active", "currency", "allows_pin_redemption", "app"]
    search_fields = ["name", "unique_identifier"]
    list_select_related = ["app"]

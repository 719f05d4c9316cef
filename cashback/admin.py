from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from cashback.models import LedgerEntry, Wallet


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ["id", "member", "card", "balance", "history", "updated_at"]
    list_filter = ["card"]
    search_fields = ["member__email", "member__phone", "member__name"]
    readonly_fields = ["app", "member", "card", "balance", "created_at", "updated_at"]
    list_select_related = ["member", "card"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="History")
    def history(self, wallet):
        url = reverse("admin:cashback_ledgerentry_changelist") + f"?wallet__id__exact={wallet.pk}"
        return format_html('<a href="{}">entries</a>', url)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Strictly read-only: the ledger is append-only, and only services append to it."""

    list_display = [
        "id",
        "created_at",
        "entry_type",
        "amount",
        "balance_after",
        "wallet",
        "card",
        "reference",
    ]
    list_filter = ["entry_type", "card", "created_at"]
    search_fields = ["reference", "wallet__member__email"]
    list_select_related = ["wallet", "card"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

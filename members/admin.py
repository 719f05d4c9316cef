from django.contrib import admin

from cashback.models import Wallet
from members.models import Member


class WalletInline(admin.TabularInline):
    model = Wallet
    extra = 0
    fields = ["card", "balance", "updated_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "email", "phone", "app", "created_at"]
    list_filter = ["app"]
    search_fields = ["email", "phone", "name"]
    readonly_fields = ["pin_hash", "pin_failed_attempts", "pin_locked_until", "created_at"]
    list_select_related = ["app"]
    inlines = [WalletInline]

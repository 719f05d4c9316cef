from django.contrib import admin

from cashback.models import Wallet
from members.models import Member
from members.phone import normalize_phone


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
    search_help_text = "An email, a phone number (any format) or part of a name."
    exclude = ["pin_hash"]
    readonly_fields = ["pin_failed_attempts", "pin_locked_until", "created_at"]
    list_select_related = ["app"]
    show_full_result_count = False
    inlines = [WalletInline]

    def get_search_results(self, request, queryset, search_term):
        # Emails are stored lower-cased and phones in E.164: exact, indexed lookups.
        term = search_term.strip()
        if "@" in term:
            return queryset.filter(email=term.lower()), False
        try:
            return queryset.filter(phone=normalize_phone(term)), False
        except ValueError:
            return queryset.filter(name__icontains=term), False

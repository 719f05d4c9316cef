from django.contrib import admin
from phonenumber_field.phonenumber import to_python

from members.models import Member, OtpChallenge


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

    def get_search_results(self, request, queryset, search_term):
        # Emails are stored lower-cased and phones in E.164: exact, indexed lookups.
        term = search_term.strip()
        if "@" in term:
            return queryset.filter(email=term), False
        phone = to_python(term)
        if phone and phone.is_valid():
            return queryset.filter(phone=phone), False
        return queryset.filter(name__icontains=term), False


@admin.register(OtpChallenge)
class OtpChallengeAdmin(admin.ModelAdmin):
    list_display = ["challenge_id", "member", "channel", "destination_masked", "created_at"]
    list_filter = ["channel"]
    readonly_fields = [f.name for f in OtpChallenge._meta.fields if f.name != "code_hash"]
    exclude = ["code_hash"]
    list_select_related = ["member"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

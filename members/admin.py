from dataclasses import dataclass
from datetime import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from phonenumber_field.phonenumber import to_python

from members.models import Member, OtpChallenge
from members.services import member_pin_unlock


@dataclass(frozen=True)
class PinState:
    """What the member page says of the PIN, and whether this user may unlock it."""

    is_set: bool
    locked_until: datetime | None  # in force: a lock that has run out is not shown
    failed_attempts: int
    can_unlock: bool

    @property
    def needs_unlock(self) -> bool:
        return self.locked_until is not None or self.failed_attempts > 0


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
    change_form_template = "admin/members/member/change_form.html"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/unlock-pin/",
                self.admin_site.admin_view(self.unlock_pin_view),
                name="members_member_unlock_pin",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        member = self.get_object(request, object_id)
        if member is not None:
            locked_until = member.pin_locked_until
            extra_context = {
                **(extra_context or {}),
                "pin": PinState(
                    is_set=member.has_pin,
                    locked_until=locked_until
                    if locked_until is not None and locked_until > timezone.now()
                    else None,
                    failed_attempts=member.pin_failed_attempts,
                    can_unlock=self.has_change_permission(request, member),
                ),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def unlock_pin_view(self, request, object_id):
        """Lifts the member's PIN lock and clears the count of wrong PINs (POST, with staff's
        change permission on members), recorded in the admin's log; twice is once."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        member = self.get_object(request, object_id)
        if member is None:
            raise Http404
        if not self.has_change_permission(request, member):
            raise PermissionDenied
        if member_pin_unlock(member=member):
            self.log_change(request, member, "Unlocked the PIN and cleared its failed attempts.")
            self.message_user(request, f"The PIN of {member} is unlocked.", messages.SUCCESS)
        else:
            self.message_user(
                request, f"The PIN of {member} was not locked; nothing changed.", messages.INFO
            )
        return HttpResponseRedirect(reverse("admin:members_member_change", args=[member.pk]))

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

from django import forms
from django.contrib import admin, messages

from apps_auth.models import ApiKey, App, Scope
from apps_auth.services import api_key_create, api_key_revoke_by_id


class AppForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = App
        fields = [
            "name",
            "mode",
            "scopes",
            "rate_limit_per_minute",
            "otp_hourly_quota",
            "is_active",
        ]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # issued by the "Issue a new API key" action, which shows the key once


def _show_key(modeladmin, request, app, raw_key):
    modeladmin.message_user(
        request,
        f"New API key for {app.name} ({app.app_id}): {raw_key} — copy it now, it is not shown "
        "again.",
        messages.WARNING,
    )


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    form = AppForm
    list_display = ["name", "app_id", "mode", "scopes", "rate_limit_per_minute", "is_active"]
    list_filter = ["mode", "is_active"]
    search_fields = ["name", "=app_id"]
    readonly_fields = ["app_id", "created_at"]
    inlines = [ApiKeyInline]
    actions = ["issue_key"]

    def get_readonly_fields(self, request, obj=None):
        # The mode fixes the keys' prefix: it is chosen once.
        return [*self.readonly_fields, "mode"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            _show_key(self, request, obj, api_key_create(app=obj).raw_key)

    @admin.action(description="Issue a new API key (shown once)", permissions=["change"])
    def issue_key(self, request, queryset):
        for app in queryset:
            _show_key(self, request, app, api_key_create(app=app).raw_key)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "app", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["app"]
    search_fields = ["prefix", "=app__app_id", "app__name"]
    readonly_fields = ["app", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["app"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted: the record says when

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = sum(api_key_revoke_by_id(key_id=key.pk) for key in queryset)
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)

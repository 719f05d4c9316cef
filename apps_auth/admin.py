from django.contrib import admin

from apps_auth.models import ApiKey, App


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # keys are issued by `create_api_key`, which shows the key once


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["name", "app_id", "mode", "scopes", "rate_limit_per_minute", "is_active"]
    list_filter = ["mode", "is_active"]
    search_fields = ["name", "app_id"]
    readonly_fields = ["app_id", "created_at"]
    inlines = [ApiKeyInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "app", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["app"]
    search_fields = ["prefix", "app__app_id", "app__name"]
    readonly_fields = ["app", "prefix", "key_hash", "created_at", "last_used_at"]
    list_select_related = ["app"]

    def has_add_permission(self, request):
        return False

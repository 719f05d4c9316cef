from django.contrib import admin, messages

from webhooks.models import WebhookEndpoint
from webhooks.selectors import webhook_endpoint_events
from webhooks.services import webhook_endpoint_delete


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Every app's endpoints, read-only; secrets are never shown. Apps register endpoints by API
    or `create_webhook_endpoint`."""

    list_display = ["id", "app", "url", "events_shown", "created_at", "deleted_at"]
    list_filter = ["app"]
    search_fields = ["url", "=app__app_id", "app__name"]
    list_select_related = ["app"]
    readonly_fields = (
        "app",
        "url",
        "events_shown",
        "previous_secret_expires_at",
        "created_at",
        "deleted_at",
    )
    fields = readonly_fields
    actions = ["stop_deliveries"]

    @admin.display(description="events")
    def events_shown(self, endpoint):
        return ", ".join(webhook_endpoint_events(endpoint))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # deleted endpoints are kept for the record: see the action

    @admin.action(description="Stop deliveries to selected endpoints", permissions=["change"])
    def stop_deliveries(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint)
        self.message_user(request, f"Stopped {queryset.count()} endpoint(s).", messages.SUCCESS)

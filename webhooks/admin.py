from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from webhooks.errors import EndpointLimitReached
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.selectors import webhook_endpoint_events
from webhooks.services import (
    webhook_deliveries_resend,
    webhook_endpoint_delete,
    webhook_endpoint_enable,
)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Every app's endpoints, read-only; secrets are never shown. Apps register endpoints by API
    or `create_webhook_endpoint`. An endpoint the worker disabled (every attempt failed for
    `CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS`) says why in `disabled_reason`; while its attempts
    fail, `failing_since` and `paused_until` show it resting."""

    list_display = [
        "id",
        "app",
        "url",
        "events_shown",
        "enabled",
        "failing_since",
        "paused_until",
        "deliveries",
        "created_at",
        "deleted_at",
    ]
    list_filter = ["enabled", "app"]
    search_fields = ["url", "=app__app_id", "app__name"]
    list_select_related = ["app"]
    readonly_fields = (
        "app",
        "url",
        "events_shown",
        "enabled",
        "disabled_at",
        "disabled_reason",
        "failures",
        "failing_since",
        "last_failed_at",
        "paused_until",
        "previous_secret_expires_at",
        "created_at",
        "deleted_at",
    )
    fields = readonly_fields
    actions = ["stop_deliveries", "enable"]

    @admin.display(description="events")
    def events_shown(self, endpoint):
        return ", ".join(webhook_endpoint_events(endpoint))

    @admin.display(description="deliveries")
    def deliveries(self, endpoint):
        url = reverse("admin:webhooks_webhookdelivery_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">deliveries</a>', url, endpoint.pk)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # deleted endpoints are kept for the record: see the action

    @admin.action(description="Enable selected endpoints again", permissions=["change"])
    def enable(self, request, queryset):
        enabled = 0
        for endpoint in queryset.filter(enabled=False, deleted_at__isnull=True):
            try:
                webhook_endpoint_enable(endpoint=endpoint)
            except EndpointLimitReached as refused:
                self.message_user(request, f"{endpoint.url}: {refused.message}", messages.ERROR)
            else:
                enabled += 1
        self.message_user(request, f"Enabled {enabled} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Stop deliveries to selected endpoints", permissions=["change"])
    def stop_deliveries(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint)
        self.message_user(request, f"Stopped {queryset.count()} endpoint(s).", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Every delivery of every app's events: where it stands, the last answer, the next try.
    Staff can send one again (the resend action); nothing else changes here."""

    list_display = [
        "id",
        "event_type",
        "endpoint_url",
        "app",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "last_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event__event_type"]
    search_fields = ["=event__public_id", "endpoint__url", "=event__app__app_id"]
    list_select_related = ["event", "endpoint", "event__app"]
    show_full_result_count = False
    readonly_fields = (
        "event_id_shown",
        "event_type",
        "endpoint",
        "app",
        "status",
        "attempts",
        "first_attempt_at",
        "last_attempt_at",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "body",
    )
    fields = readonly_fields
    actions = ["resend"]

    @admin.display(description="event", ordering="event__event_type")
    def event_type(self, delivery):
        return delivery.event.event_type

    @admin.display(description="webhook-id")
    def event_id_shown(self, delivery):
        return delivery.event.public_id

    @admin.display(description="endpoint")
    def endpoint_url(self, delivery):
        return delivery.endpoint.url

    @admin.display(description="app")
    def app(self, delivery):
        return delivery.event.app

    @admin.display(description="body")
    def body(self, delivery):
        return delivery.event.body

    def has_resend_permission(self, request):
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description="Resend selected deliveries", permissions=["resend"])
    def resend(self, request, queryset):
        count = webhook_deliveries_resend(delivery_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"{count} deliver{'y' if count == 1 else 'ies'} queued to be sent again.",
            messages.SUCCESS,
        )

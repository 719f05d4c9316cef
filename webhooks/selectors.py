from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from apps_auth.models import App
from core.api.fields import MAX_ID
from core.errors import NotFound
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list(*, app: App) -> QuerySet[WebhookEndpoint]:
    """The app's endpoints, newest first; deleted ones are not listed."""
    return WebhookEndpoint.objects.filter(app=app, deleted_at__isnull=True)


def webhook_endpoint_get(*, app: App, endpoint_id: int) -> WebhookEndpoint:
    """One of the app's endpoints. Raises `NotFound` for another app's, a deleted one or none."""
    endpoint = (
        webhook_endpoint_list(app=app).filter(pk=endpoint_id).first()
        if 0 < endpoint_id <= MAX_ID
        else None
    )
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


def webhook_endpoint_events(endpoint: WebhookEndpoint) -> list[str]:
    """The events the endpoint receives: the ones it named, or every event."""
    return list(endpoint.events) or list(EventType.values)


def webhook_apps_due(*, as_of: datetime) -> list[int]:
    """The apps with a pending delivery due at `as_of`: one probe of `webhook_delivery_due`
    per app."""
    due = WebhookDelivery.objects.filter(
        app=OuterRef("pk"), status=DeliveryStatus.PENDING, next_attempt_at__lte=as_of
    )
    return list(App.objects.filter(Exists(due)).order_by("pk").values_list("pk", flat=True))

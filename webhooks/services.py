import base64
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps_auth.models import App, Mode
from core.errors import InvalidInput
from webhooks.destinations import destination_check
from webhooks.models import EventType, WebhookEndpoint

SECRET_PREFIX = "whsec_"  # noqa: S105  the Standard Webhooks prefix, not a secret
# After a rotation the previous secret keeps signing beside the new one this long.
ROTATION_OVERLAP = timedelta(hours=24)


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _events_clean(events: list[str] | None) -> list[str]:
    unknown = sorted(set(events or []) - set(EventType.values))
    if unknown:
        raise InvalidInput(
            "Unknown events.",
            details={"events": [f"Choose from {', '.join(EventType.values)}; got {unknown}."]},
        )
    return sorted(set(events or []))


def webhook_endpoint_create(
    *, app: App, url: str, events: list[str] | None = None
) -> WebhookEndpoint:
    """Registers an endpoint with a new secret. No `events`: every event.

    Raises `InvalidInput` for unknown events and for a URL the app may not send to: a
    live-mode app's must be `https` and resolve to public addresses only; a test-mode app may
    also use `http` and loopback (`webhooks.destinations`).
    """
    cleaned = _events_clean(events)
    destination_check(url, live=app.mode == Mode.LIVE)
    return WebhookEndpoint.objects.create(
        app=app, url=url, events=cleaned, secret=webhook_secret_new()
    )


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Stops deliveries to the endpoint; it is kept, as deleted, for the record."""
    if endpoint.deleted_at is None:
        endpoint.deleted_at = timezone.now()
        endpoint.save(update_fields=["deleted_at"])
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Gives the endpoint a new secret; the one in force keeps signing beside it for
    `ROTATION_OVERLAP`, so that the receiver can switch without missing an event. A secret
    rotated out earlier stops signing at once."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
    locked.secret = webhook_secret_new()
    locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return locked

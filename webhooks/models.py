import json
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.utils import timezone

from apps_auth.models import App
from webhooks.queries import EVENT_INSERT

# The channel on which the worker hears of deliveries due now: each insert of deliveries
# notifies it at commit (a trigger of the deliveries' table, `webhooks/migrations`), and so does
# a resend.
DELIVERIES_CHANNEL = "cashback_webhook_deliveries"


class EventType(models.TextChoices):
    EARNED = "cashback.earned", "Cashback earned"
    RELEASED = "cashback.released", "Pending cashback released"
    REDEEMED = "cashback.redeemed", "Cashback redeemed"
    REFUNDED = "cashback.refunded", "Cashback taken back by a refund"
    ADJUSTED = "cashback.adjusted", "Cashback adjusted by staff"
    EXPIRED = "cashback.expired", "Cashback expired"
    EXPIRING = "cashback.expiring", "Cashback about to expire"
    REDEMPTION_REVERSED = "cashback.redemption_reversed", "A redemption reversed"
    ENDPOINT_DISABLED = "webhook_endpoint.disabled", "A webhook endpoint disabled"
    TIER_CHANGED = "member.tier_changed", "A member's tier changed"


class WebhookEndpoint(models.Model):
    """Where an app wants its events POSTed, signed as the Standard Webhooks specification says.

    `events` empty: every event. The secret signs; after a rotation the previous one signs
    beside it until `previous_secret_expires_at`. A deleted endpoint is kept (`deleted_at`) for
    the record of what was delivered to it, and receives nothing more; so is a disabled one
    (`enabled` off) until it is enabled again.

    While its attempts fail, an endpoint rests: after a few failures in a row (`failures`),
    nothing is sent to it until `paused_until`, a backoff that grows with each further failure,
    so that a receiver that stalls costs the worker one attempt per rest rather than one per
    event. One
    that failed every attempt since `failing_since` for `CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS`
    is disabled, `disabled_reason` saying why.
    """

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True, db_default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="", db_default="")
    failures = models.PositiveIntegerField(default=0, db_default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["app", "-created_at"], name="webhook_endpoint_app")]

    def __str__(self) -> str:
        return f"{self.url} ({self.app.app_id})"


def _event_public_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


@dataclass
class EventDraft:
    """A new event as the statement that saves it needs it: its body is `head`, its app's
    public id as a JSON string (read by the statement) and `tail`, which renders `data`. Once
    saved, `endpoint_ids` are the app's endpoints that take its type."""

    event: "WebhookEvent"
    head: str
    tail: str
    data: dict
    endpoint_ids: list[int] | None = None

    def params(self) -> dict[str, Any]:
        """The named parameters of `EVENT_INSERT` (and of the event's part of `ENTRY_APPEND`)."""
        event = self.event
        return {
            "event_public_id": event.public_id,
            "event_app": event.app_id,
            "event_type": event.event_type,
            "event_head": self.head,
            "event_tail": self.tail,
            "event_created_at": event.created_at,
            "event_types": json.dumps([event.event_type]),
        }

    def saved(self, *, pk: int, body: str, endpoint_ids: list[int], using: str) -> None:
        """Records what the statement that saved the event returned."""
        self.event.pk, self.event.body = pk, body
        self.event._state.adding = False
        self.event._state.db = using
        self.endpoint_ids = list(endpoint_ids)


class WebhookEventManager(models.Manager["WebhookEvent"]):
    def insert_for_endpoints(self, draft: EventDraft) -> list[int]:
        """Saves the new event of `draft`; returns the ids of the app's endpoints that take its
        type (enabled, not deleted, with no `events` or with its type among them).

        One statement (`webhooks.queries.EVENT_INSERT`): it runs in the transaction
        of every operation of the ledger, and the ORM would take three (the app's public id,
        the insert, the endpoints). The ledger's own entries save their event in the statement
        that saves the entry (`LedgerEntry.objects.append`).
        """
        using = self._db or router.db_for_write(self.model)
        with connections[using].cursor() as cursor:
            cursor.execute(EVENT_INSERT, draft.params())
            pk, body, endpoint_ids = cursor.fetchone()
        draft.saved(pk=pk, body=body, endpoint_ids=endpoint_ids, using=using)
        return list(endpoint_ids)


class WebhookEvent(models.Model):
    """One event of an app, recorded in the transaction of the ledger entry it tells of, so that
    it exists if and only if the entry does. `body` is the exact JSON text every endpoint is
    sent; `public_id` is its `id` and the `webhook-id` header, by which receivers dedupe."""

    public_id = models.CharField(max_length=40, default=_event_public_id)
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="webhook_events")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = WebhookEventManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["app", "public_id"], name="webhook_event_public_id")
        ]
        indexes = [models.Index(fields=["app", "-created_at"], name="webhook_event_app")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.event_type}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event to one endpoint: tried until a 2xx answers, or failed once its first attempt
    is `WEBHOOK_RETRY_FOR_HOURS` old. `next_attempt_at` is when the worker tries next (none
    once delivered or failed): the pending deliveries due are the worker's queue
    (`webhooks.dispatch`), each row locked while it is attempted."""

    # The app of the event and of the endpoint; each key is served by an index led by it.
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(
        WebhookEvent, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "event", "endpoint"], name="webhook_delivery_once"
            )
        ]
        indexes = [
            # The back office: newest first, by status.
            models.Index(fields=["app", "status", "-created_at"], name="webhook_delivery_status"),
            models.Index(
                fields=["app", "endpoint", "-created_at"], name="webhook_delivery_endpoint"
            ),
            # The worker's queue: an app's pending deliveries, by when they are due.
            models.Index(
                fields=["app", "next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due",
            ),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event.public_id} → {self.endpoint.url}"

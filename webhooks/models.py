from django.db import models

from apps_auth.models import App


class EventType(models.TextChoices):
    EARNED = "cashback.earned", "Cashback earned"
    RELEASED = "cashback.released", "Pending cashback released"
    REDEEMED = "cashback.redeemed", "Cashback redeemed"
    REFUNDED = "cashback.refunded", "Cashback taken back by a refund"
    ADJUSTED = "cashback.adjusted", "Cashback adjusted by staff"
    EXPIRED = "cashback.expired", "Cashback expired"
    EXPIRING = "cashback.expiring", "Cashback about to expire"
    REDEMPTION_REVERSED = "cashback.redemption_reversed", "A redemption reversed"


class WebhookEndpoint(models.Model):
    """Where an app wants its events POSTed, signed as the Standard Webhooks specification says.

    `events` empty: every event. The secret signs; after a rotation the previous one signs
    beside it until `previous_secret_expires_at`. A deleted endpoint is kept (`deleted_at`) for
    the record of what was delivered to it, and receives nothing more.
    """

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["app", "-created_at"], name="webhook_endpoint_app")]

    def __str__(self) -> str:
        return f"{self.url} ({self.app.app_id})"

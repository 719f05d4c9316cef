import secrets

from django.conf import settings
from django.db import models


class Scope(models.TextChoices):
    CASHBACK_READ = "cashback_read", "Read balances and history"
    CASHBACK_WRITE = "cashback_write", "Earn, redeem and refund"
    CARD_READ = "card_read", "Read cards, their rules and tiers"
    CARD_WRITE = "card_write", "Create and change rules and tiers"
    WEBHOOKS = "webhooks", "Manage webhook endpoints"


class Mode(models.TextChoices):
    TEST = "test", "Test"
    LIVE = "live", "Live"


def new_app_id() -> str:
    return f"app_{secrets.token_hex(12)}"


def default_rate_limit() -> int:
    return settings.CASHBACK_DEFAULT_RATE_LIMIT


class App(models.Model):
    """A merchant's API application: the tenant that owns cards, members, wallets and entries."""

    app_id = models.CharField(max_length=40, unique=True, default=new_app_id, editable=False)
    name = models.CharField(max_length=200)
    mode = models.CharField(max_length=4, choices=Mode.choices, default=Mode.TEST)
    scopes = models.JSONField(default=list, help_text="A list of scopes, e.g. ['card_read'].")
    rate_limit_per_minute = models.PositiveIntegerField(default=default_rate_limit)
    otp_hourly_quota = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="One-time codes the app may send per hour; empty: the "
        "CASHBACK_OTP_APP_HOURLY_QUOTA setting.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.app_id})"

    # DRF reads these on `request.user`.
    is_authenticated = True
    is_anonymous = False

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def otp_quota(self) -> int:
        """One-time codes the app may send per hour: its own quota, else the setting's."""
        if self.otp_hourly_quota is not None:
            return self.otp_hourly_quota
        return settings.CASHBACK_OTP_APP_HOURLY_QUOTA


class ApiKey(models.Model):
    """A secret key of an app. Only its HMAC-SHA256 digest is stored; the key is shown once."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, unique=True, help_text="Public start of the key.")
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}…"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class IdempotencyRecord(models.Model):
    """A POST's `Idempotency-Key`, per app: the request's digest and, once done, its response.

    While `in_progress`, `lease_until` says how long the first request may still be running;
    past it, a retry takes the record over (the entry's one-to-one link to its record keeps the
    operation itself from running twice).
    """

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(
        max_length=12, choices=[(IN_PROGRESS, "In progress"), (COMPLETED, "Completed")]
    )
    lease_until = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "cashback_idempotencyrecord"  # its table since before it moved here
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["app", "key"], name="idempotency_key_per_app"),
        ]
        # The purge goes app by app (`idempotency_purge`).
        indexes = [models.Index(fields=["app", "created_at"], name="idempotency_created")]

    # Set by the claim: True when this request created the record (no entry can exist yet).
    claimed_new = False

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"

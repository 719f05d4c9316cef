import secrets

from django.conf import settings
from django.db import models


class Scope(models.TextChoices):
    CASHBACK_READ = "cashback_read", "Read balances and history"
    CASHBACK_WRITE = "cashback_write", "Earn, redeem and refund"
    CARD_READ = "card_read", "Read cards"


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


def new_challenge_id() -> str:
    return f"otp_{secrets.token_hex(16)}"


class OtpChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class OtpChallenge(models.Model):
    """A one-time code sent to a member. Only a keyed digest of the code is stored."""

    challenge_id = models.CharField(max_length=40, unique=True, default=new_challenge_id)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="otp_challenges"
    )
    channel = models.CharField(max_length=5, choices=OtpChannel.choices)
    destination_masked = models.CharField(max_length=254)
    code_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "OTP challenge"
        indexes = [models.Index(fields=["member", "created_at"], name="otp_member_recent")]

    def __str__(self) -> str:
        return f"{self.challenge_id} ({self.channel})"

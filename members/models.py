from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.db.models import Q


class Member(models.Model):
    """A member of one app. Email is stored lower-cased and phone in E.164, each unique per app."""

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="members")
    name = models.CharField(max_length=200, blank=True, default="")
    email = models.EmailField(max_length=254, null=True, blank=True)
    phone = models.CharField(max_length=20, null=True, blank=True, help_text="E.164")
    pin_hash = models.CharField(max_length=128, blank=True, default="")
    pin_failed_attempts = models.PositiveSmallIntegerField(default=0)
    pin_locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "email"],
                condition=Q(email__isnull=False),
                name="member_email_per_app",
            ),
            models.UniqueConstraint(
                fields=["app", "phone"],
                condition=Q(phone__isnull=False),
                name="member_phone_per_app",
            ),
        ]
        # Support looks members up by email or phone across apps.
        indexes = [
            models.Index(fields=["email"], name="member_email"),
            models.Index(fields=["phone"], name="member_phone"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"Member {self.pk}"

    @property
    def has_pin(self) -> bool:
        return bool(self.pin_hash)

    def set_pin(self, pin: str) -> None:
        self.pin_hash = make_password(pin)

    def pin_matches(self, pin: str) -> bool:
        return bool(self.pin_hash) and check_password(pin, self.pin_hash)

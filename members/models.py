import hashlib
import secrets

from django.contrib.auth.hashers import check_password, make_password
from django.db import connections, models, router
from django.db.models import Q
from django.db.models.functions import Lower
from phonenumber_field.modelfields import PhoneNumberField

from core.rows import from_row, prepared_cursor
from members.queries import MEMBER_OF_APP


class LowercaseEmailField(models.EmailField):
    """An email address kept lower-cased whatever the way in: saves, bulk creates, updates and
    exact lookups all see the lower-cased value."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.lower() if isinstance(value, str) else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return value.lower() if isinstance(value, str) else value

    def pre_save(self, model_instance, add):
        value = self.to_python(getattr(model_instance, self.attname))
        setattr(model_instance, self.attname, value)
        return value


class MemberManager(models.Manager["Member"]):
    def of_app(
        self,
        *,
        app_id: int,
        member_id: int | None = None,
        email: str | None = None,
        phone: str | None = None,
    ) -> "Member | None":
        """The app's member with this id, else this email (any case), else this phone (any
        format); None when there is none.

        Written out (`members.queries.MEMBER_OF_APP`), on the connection the router picks for
        reads: every earn by email or phone and every redeem reads its member, and composing the
        query with the ORM costs a worker more CPU than the rest of the lookup.
        """
        keys = member_keys(member_id=member_id, email=email, phone=phone)
        if keys is None:
            return None
        using = self._db or router.db_for_read(self.model)
        with prepared_cursor(using) as cursor:
            cursor.execute(MEMBER_OF_APP, {"app": app_id, **keys})
            row = cursor.fetchone()
        return None if row is None else from_row(self.model, row, using)


def member_keys(
    *, member_id: int | None = None, email: str | None = None, phone: str | None = None
) -> dict[str, int | str | None] | None:
    """How a statement finds a member (`MEMBER_OF_APP`, the wallet's move): by id, else email,
    else phone, as the parameters `member_id`, `email` and `phone`, the one it goes by as the
    column holds it (the email lower-cased, the phone in E.164) and the others None; None when
    nothing names a member."""
    if member_id is not None:
        return {"member_id": member_id, "email": None, "phone": None}
    if email:
        return {"member_id": None, "email": _prepared("email", email), "phone": None}
    if phone:
        return {"member_id": None, "email": None, "phone": _prepared("phone", phone)}
    return None


def _prepared(name: str, value: str) -> str:
    field = next(f for f in Member._meta.concrete_fields if f.name == name)
    return field.get_prep_value(value)


class Member(models.Model):
    """A member of one app. Email is stored lower-cased and phone in E.164 (parsed with the
    default region, `PHONENUMBER_DEFAULT_REGION`), each unique per app; the database enforces
    all four rules."""

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="members")
    name = models.CharField(max_length=200, blank=True, default="")
    email = LowercaseEmailField(max_length=254, null=True, blank=True)
    phone = PhoneNumberField(max_length=20, null=True, blank=True, help_text="E.164")
    pin_hash = models.CharField(max_length=128, blank=True, default="")
    pin_failed_attempts = models.PositiveSmallIntegerField(default=0)
    pin_locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MemberManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                "app",
                Lower("email"),
                condition=Q(email__isnull=False),
                name="member_email_per_app",
                violation_error_message="This app already has a member with this email.",
            ),
            models.UniqueConstraint(
                fields=["app", "phone"],
                condition=Q(phone__isnull=False),
                name="member_phone_per_app",
                violation_error_message="This app already has a member with this phone.",
            ),
            models.CheckConstraint(condition=Q(email=Lower("email")), name="member_email_lower"),
            models.CheckConstraint(
                condition=Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"), name="member_phone_e164"
            ),
        ]
        # The app's member by email, as the column holds it (`MEMBER_OF_APP`); by phone,
        # `member_phone_per_app` serves.
        indexes = [models.Index(fields=["app", "email"], name="member_email")]

    def __str__(self) -> str:
        return self.name or self.email or str(self.phone or "") or f"Member {self.pk}"

    @property
    def has_pin(self) -> bool:
        return bool(self.pin_hash)

    def set_pin(self, pin: str) -> None:
        self.pin_hash = make_password(pin)

    def pin_matches(self, pin: str) -> bool:
        return bool(self.pin_hash) and check_password(pin, self.pin_hash)


def new_challenge_id() -> str:
    return f"otp_{secrets.token_hex(16)}"


class OtpChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class OtpChallengeManager(models.Manager["OtpChallenge"]):
    def lock_counts(self, *, app_pk: int, destination_digest: str) -> None:
        """Holds, until the transaction ends, the right to count and add the codes of this app
        and of this destination: a PostgreSQL transaction-level advisory lock on each, taken in
        that order by every request (so two never wait on each other in a cycle). Written out
        because the ORM has no word for it; nothing but these counts takes these locks."""
        using = self._db or router.db_for_write(self.model)
        with connections[using].cursor() as cursor:
            for name in (f"otp-app:{app_pk}", f"otp-destination:{destination_digest}"):
                cursor.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _lock_key(name)})


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for `name`."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


class OtpChallenge(models.Model):
    """A one-time code for a member. Only a keyed digest of the code is stored, and of the
    address it goes to (`destination_digest`, by which codes are counted per destination across
    members and apps)."""

    challenge_id = models.CharField(max_length=40, default=new_challenge_id)
    app = models.ForeignKey("apps_auth.App", on_delete=models.CASCADE, related_name="+")
    # Not stored, and set only by `otp_request` for a test-mode app: the code itself, which its
    # answer carries (and only then: a live app's answer has no such field).
    test_code: str
    # Served by `otp_member_recent`, which leads with the app as every index of the table does.
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="otp_challenges", db_index=False
    )
    channel = models.CharField(max_length=5, choices=OtpChannel.choices)
    destination_masked = models.CharField(max_length=254)
    destination_digest = models.CharField(max_length=64, blank=True, default="")
    # Whether the code went out to the address (a live-mode app's): only such codes count
    # toward the ceiling across apps, which protects the person behind the address. A test-mode
    # app's code is handed back to it, and limited by its own counts alone. A row written
    # without saying (by the release before, while this one is deployed) counts, as all did.
    sent = models.BooleanField(db_default=True)
    code_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OtpChallengeManager()

    class Meta:
        db_table = "apps_auth_otpchallenge"  # its table since before it moved here
        ordering = ["-created_at", "-id"]
        verbose_name = "OTP challenge"
        constraints = [
            # A code is verified by the app that asked for it (its API key names the app).
            models.UniqueConstraint(fields=["app", "challenge_id"], name="otp_challenge_per_app"),
        ]
        indexes = [
            models.Index(fields=["app", "member", "created_at"], name="otp_member_recent"),
            # The one index that does not lead with the app: the ceiling of codes to one address
            # counts the codes sent to it across all apps (`members.otp`).
            models.Index(
                fields=["destination_digest", "created_at"],
                condition=Q(sent=True),
                name="otp_destination_recent",
            ),
            models.Index(fields=["app", "created_at"], name="otp_app_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.challenge_id} ({self.channel})"

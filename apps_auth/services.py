from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from apps_auth.keys import generate_key, hash_key, key_matches, key_prefix
from apps_auth.models import ApiKey, App, Mode, Scope
from core.errors import InvalidInput, NotFound
from core.generations import configuration_changed


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    raw_key: str  # shown once, never stored


def _clean_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown or not scopes:
        raise InvalidInput(
            "Unknown or missing scopes.",
            details={
                "scopes": [f"Choose from {', '.join(Scope.values)}; got {unknown or 'none'}."]
            },
        )
    return sorted(set(scopes))


@transaction.atomic
def app_create(
    *,
    name: str,
    scopes: list[str],
    mode: str = Mode.TEST,
    rate_limit_per_minute: int | None = None,
    otp_hourly_quota: int | None = None,
) -> tuple[App, IssuedKey]:
    """Creates an app and its first key. `otp_hourly_quota` None leaves the app on the setting
    (`CASHBACK_OTP_APP_HOURLY_QUOTA`). Raises `InvalidInput` for unknown scopes or mode, or a
    negative quota."""
    if mode not in Mode.values:
        raise InvalidInput("Unknown mode.", details={"mode": [f"Choose from {Mode.values}."]})
    if otp_hourly_quota is not None and otp_hourly_quota < 0:
        raise InvalidInput(
            "Invalid quota.", details={"otp_hourly_quota": ["A number of codes, 0 or more."]}
        )
    app = App(name=name, mode=mode, scopes=_clean_scopes(scopes), otp_hourly_quota=otp_hourly_quota)
    if rate_limit_per_minute is not None:
        app.rate_limit_per_minute = rate_limit_per_minute
    app.save()
    return app, api_key_create(app=app)


def api_key_create(*, app: App, raw_key: str | None = None) -> IssuedKey:
    """Issues one more key for the app. `raw_key` lets the demo seed use a known key."""
    for _ in range(5):
        raw = raw_key or generate_key(app.mode)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(app=app, prefix=key_prefix(raw), key_hash=hash_key(raw))
            return IssuedKey(api_key=key, raw_key=raw)
        except IntegrityError:
            if raw_key:
                raise
    raise RuntimeError("Could not draw a unique key prefix.")


def api_key_revoke_by_id(*, key_id: int) -> bool:
    """Revokes a key by its id (the back office never sees raw keys); True if it was live."""
    key = ApiKey.objects.filter(pk=key_id).first()
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    return True


def api_key_revoke(*, app: App, raw_key: str) -> ApiKey:
    """Revokes the app's key at once. Raises `NotFound` when the app holds no such key."""
    key = ApiKey.objects.filter(app=app, prefix=key_prefix(raw_key)).first()
    if key is None or not key_matches(raw_key, key.key_hash):
        raise NotFound("This app holds no such key.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


@receiver(post_save, sender=App)
@receiver(post_delete, sender=App)
@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def credentials_changed(**kwargs) -> None:
    """A key or an app changed (revoked, deactivated, new scopes, a new key), by any way in:
    once the change is committed, a new configuration generation makes every server process
    read keys from the database again before its next request. (`last_used_at` is written with
    `update()`, which changes nothing that authentication decides on, and sends no signal.)"""
    configuration_changed()

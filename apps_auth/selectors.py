from django.utils import timezone

from apps_auth.keys import PREFIX_LENGTH, key_matches, key_prefix
from apps_auth.models import ApiKey, App


def app_authenticate(*, app_id: str, api_key: str) -> App | None:
    """The active app whose unrevoked key this is, or None.

    The digest is compared in constant time.
    """
    if len(api_key) <= PREFIX_LENGTH or len(api_key) > 128 or len(app_id) > 40:
        return None
    key = (
        ApiKey.objects.select_related("app")
        .filter(prefix=key_prefix(api_key), revoked_at__isnull=True)
        .first()
    )
    if key is None or key.app.app_id != app_id or not key.app.is_active:
        return None
    if not key_matches(api_key, key.key_hash):
        return None
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key.app


def app_get(*, app_id: str) -> App | None:
    return App.objects.filter(app_id=app_id).first()

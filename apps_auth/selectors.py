import threading
from dataclasses import dataclass

from cachetools import TTLCache
from django.conf import settings
from django.utils import timezone

from apps_auth.keys import PREFIX_LENGTH, key_matches, key_prefix
from apps_auth.models import ApiKey, App
from core.generations import GenerationCache

# How often, at most, a key's last_used_at is written (per key, per server process).
LAST_USED_RESOLUTION = 60
# Keys held per process; unknown prefixes are cached too (as misses), so this bounds them.
KEY_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class LiveKey:
    """A key as authentication needs it; `app` None: no live key has this prefix."""

    key_id: int | None
    key_hash: str
    app: App | None


_lock = threading.Lock()
_keys: GenerationCache[str, LiveKey] = GenerationCache(
    KEY_CACHE_SIZE, ttl=settings.API_KEY_CACHE_SECONDS
)
_last_used_written: TTLCache[int, bool] = TTLCache(KEY_CACHE_SIZE, ttl=LAST_USED_RESOLUTION)


def _live_key(prefix: str) -> LiveKey:
    """The live key with this prefix: from this process's cache while the configuration
    generation (`core.generations`) is the one it was read under (and for at most
    `API_KEY_CACHE_SECONDS`), else from the database. A revocation is in force for the very next
    request, in every process (`GenerationCache`).
    """

    def load() -> LiveKey:
        key = (
            ApiKey.objects.select_related("app")
            .filter(prefix=prefix, revoked_at__isnull=True)
            .first()
        )
        return LiveKey(
            key_id=key.pk if key else None,
            key_hash=key.key_hash if key else "",
            app=key.app if key else None,
        )

    return _keys.get(prefix, load)


def app_authenticate(*, app_id: str, api_key: str) -> App | None:
    """The active app whose unrevoked key this is, or None.

    The key's digest is compared in constant time on every request; the key's record comes
    from an in-process cache checked against the configuration generation (one read of the
    shared cache per request).
    """
    if len(api_key) <= PREFIX_LENGTH or len(api_key) > 128 or len(app_id) > 40:
        return None
    key = _live_key(key_prefix(api_key))
    app = key.app
    if app is None or key.key_id is None or app.app_id != app_id or not app.is_active:
        return None
    if not key_matches(api_key, key.key_hash):
        return None
    with _lock:
        write = key.key_id not in _last_used_written
        _last_used_written[key.key_id] = True
    if write:
        ApiKey.objects.filter(pk=key.key_id).update(last_used_at=timezone.now())
    return app


def api_key_cache_clear() -> None:
    """Forgets every cached key, so that the next request reads the database."""
    _keys.clear()
    with _lock:
        _last_used_written.clear()


def app_get(*, app_id: str) -> App | None:
    return App.objects.filter(app_id=app_id).first()

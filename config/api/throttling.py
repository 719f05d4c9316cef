"""Per-app request rate, counted in the cache all server processes share."""

import threading
import time
from functools import cache as once

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60
# A process takes up to this many of an app's requests from the shared counter at once, and
# only a thousandth of the app's limit: a busy app costs one round trip per batch, while what
# processes hold unused at a window's end shifts the limit by at most 0.1 % per process.
MAX_BATCH = 20


@once
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _count(key: str, n: int) -> int:
    """Adds `n` to the window's counter and returns it, atomically, in the shared cache.

    With Redis, INCRBY and EXPIRE go in one round trip (the cache framework's `incr` takes two,
    plus a client per call); otherwise the database cache's add-then-incr.
    """
    if settings.REDIS_URL:
        pipe = _redis().pipeline(transaction=False)
        pipe.incrby(key, n)
        pipe.expire(key, WINDOW_SECONDS * 2, nx=True)
        return int(pipe.execute()[0])
    try:
        return cache.incr(key, n)
    except ValueError:
        return n if cache.add(key, n, timeout=WINDOW_SECONDS * 2) else cache.incr(key, n)


class Allowance:
    """The requests this process has taken from the shared counters and not used yet."""

    def __init__(self):
        self._lock = threading.Lock()
        self._window: int | None = None
        self._held: dict[int, int] = {}  # app pk -> requests held, for `_window`

    def take(self, *, app_pk: int, window: int, limit: int) -> bool:
        """One request of the app's window, from what is held or else from the shared counter,
        which hands out at most `limit` in all."""
        with self._lock:
            if self._window is None or window > self._window:
                self._window, self._held = window, {}  # what was held for the last one is void
            if window == self._window and self._held.get(app_pk, 0) > 0:
                self._held[app_pk] -= 1
                return True
        batch = max(1, min(MAX_BATCH, limit // 1000))
        total = _count(f"throttle:app:{app_pk}:{window}", batch)
        granted = max(0, min(batch, limit - (total - batch)))
        if granted == 0:
            return False
        with self._lock:
            if self._window == window:
                self._held[app_pk] = self._held.get(app_pk, 0) + granted - 1
        return True


_allowance = Allowance()


class AppRateThrottle(BaseThrottle):
    """At most `App.rate_limit_per_minute` requests per app per clock minute.

    A fixed window counted with the cache's atomic `incr` (atomic on Redis; on the database
    cache, close enough for a rate limit), in batches for apps with high limits (`MAX_BATCH`).
    Past the limit DRF answers 429 with Retry-After.
    """

    def allow_request(self, request, view) -> bool:
        app = request.auth
        if app is None:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return _allowance.take(app_pk=app.pk, window=window, limit=app.rate_limit_per_minute)

    def wait(self) -> float:
        return self._wait

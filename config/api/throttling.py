"""Per-app request rate, counted in the cache all server processes share."""

import time
from functools import cache as once

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60


@once
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _count(key: str) -> int:
    """Adds one to the window's counter and returns it, atomically, in the shared cache.

    With Redis, INCR and EXPIRE go in one round trip (the cache framework's `incr` takes two,
    plus a client per call); otherwise the database cache's add-then-incr.
    """
    if settings.REDIS_URL:
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS * 2, nx=True)
        return int(pipe.execute()[0])
    try:
        return cache.incr(key)
    except ValueError:
        return 1 if cache.add(key, 1, timeout=WINDOW_SECONDS * 2) else cache.incr(key)


class AppRateThrottle(BaseThrottle):
    """At most `App.rate_limit_per_minute` requests per app per clock minute.

    A fixed window counted with the cache's atomic `incr` (atomic on Redis; on the database
    cache, close enough for a rate limit). Past the limit DRF answers 429 with Retry-After.
    """

    def allow_request(self, request, view) -> bool:
        app = request.auth
        if app is None:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        count = _count(f"throttle:app:{app.pk}:{window}")
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return count <= app.rate_limit_per_minute

    def wait(self) -> float:
        return self._wait

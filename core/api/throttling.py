"""Per-app request rate, counted in the cache all server processes share."""

import time
from functools import cache as once

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60


@once
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def window_count(key: str) -> int:
    """Adds one to the window's counter and returns it, atomically, in the shared cache.

    With Redis, INCR and EXPIRE go in one round trip (the cache framework's `incr` takes two);
    otherwise the cache's add-then-incr.
    """
    if settings.REDIS_URL:
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS * 2, nx=True)
        return int(pipe.execute()[0])
    if cache.add(key, 1, timeout=WINDOW_SECONDS * 2):
        return 1
    return cache.incr(key)


class AppRateThrottle(BaseThrottle):
    """At most `rate_limit_per_minute` requests per app (`request.auth`) per clock minute.

    A fixed window counted in the shared cache; past the limit DRF answers 429 with Retry-After.
    """

    def allow_request(self, request, view) -> bool:
        app = request.auth
        if app is None:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return window_count(f"throttle:app:{app.pk}:{window}") <= app.rate_limit_per_minute

    def wait(self) -> float:
        return self._wait

"""Per-app request rate, counted in the cache all server processes share."""

import time

from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60


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
        key = f"throttle:app:{app.pk}:{window}"
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=WINDOW_SECONDS * 2)
            count = 1
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return count <= app.rate_limit_per_minute

    def wait(self) -> float:
        return self._wait

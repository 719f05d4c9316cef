"""Request rates, counted in the cache all server processes share: per app for what needs
credentials, per client address for what does not. Failed admin logins are counted per client
address too (django-axes); `lockout_username` says under which username."""

import ipaddress
import threading
import time
from functools import cache as once

import redis
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone
from ipware import ip as ipware
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60
# The most requests a process takes from the shared counter in one round trip (see
# `BatchedAllowance`), and never more than a thousandth of the app's limit.
MAX_BATCH = 20


@once
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def window_count(key: str, n: int = 1) -> int:
    """Adds `n` to the window's counter in the shared cache and returns the new total.

    With Redis, INCRBY and EXPIRE go in one round trip (the cache framework's `incr` takes two)
    and the count is atomic. Otherwise the cache's own `incr`, and `add` when the window is new:
    on the database cache a read then a write, so concurrent processes may miss one another's
    increments, which a rate limit can afford.
    """
    if settings.REDIS_URL:
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
        pipe.incrby(key, n)
        pipe.expire(key, WINDOW_SECONDS * 2, nx=True)
        return int(pipe.execute()[0])
    try:
        return cache.incr(key, n)
    except ValueError:  # the window's first request
        return n if cache.add(key, n, timeout=WINDOW_SECONDS * 2) else cache.incr(key, n)


class BatchedAllowance:
    """The requests this process has taken from the apps' shared window counters and not used.

    A busy app's requests are taken from its shared counter a batch at a time (a thousandth of
    its limit, at most `MAX_BATCH`), so that it costs one round trip to the cache per batch
    instead of one per request (the changelog's benchmark runs measured what it bought). The
    processes never take more than the limit from the counter (exactly so on Redis); what a
    process holds unused when a window ends shifts an app's limit by at most 0.1 % per process.
    """

    def __init__(self) -> None:
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
        total = window_count(f"throttle:app:{app_pk}:{window}", batch)
        granted = max(0, min(batch, limit - (total - batch)))
        if granted == 0:
            return False
        with self._lock:
            if self._window == window:
                self._held[app_pk] = self._held.get(app_pk, 0) + granted - 1
        return True


allowance = BatchedAllowance()


class AppRateThrottle(BaseThrottle):
    """At most `rate_limit_per_minute` requests per app (`request.auth`) per clock minute.

    A fixed window counted in the shared cache through this process's `BatchedAllowance`; past
    the limit DRF answers 429 with Retry-After.
    """

    def allow_request(self, request, view) -> bool:
        app = request.auth
        if app is None:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return allowance.take(app_pk=app.pk, window=window, limit=app.rate_limit_per_minute)

    def wait(self) -> float:
        return self._wait


def client_address(request) -> str | None:
    """Who a request comes from, for the limits kept per client (the throttle of what needs no
    credentials, and the admin login's lockout through AXES_CLIENT_IP_CALLABLE): the peer's
    address, or X-Forwarded-For through ADMIN_LOGIN_PROXY_COUNT proxies (config/settings.py),
    read by django-ipware as django-axes would. An IPv6 client counts as its /64, the block
    one subscriber is given, so that its other addresses do not buy it more. None when there
    is no address to read."""
    # django-axes's own settings, with the defaults it gives them (axes.conf).
    address, _ = ipware.get_client_ip(
        request,
        proxy_order=getattr(settings, "AXES_IPWARE_PROXY_ORDER", "left-most"),
        proxy_count=getattr(settings, "AXES_IPWARE_PROXY_COUNT", None),
        proxy_trusted_ips=getattr(settings, "AXES_IPWARE_PROXY_TRUSTED_IPS", None),
        request_header_order=settings.AXES_IPWARE_META_PRECEDENCE_ORDER,
    )
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False).network_address)
    return str(ip)


class AnonymousRateThrottle(BaseThrottle):
    """At most CASHBACK_ANONYMOUS_RATE_LIMIT requests per client address per clock minute to
    everything that answers without credentials, all of it together. Add it to such a view's
    `throttle_classes`; past the limit DRF answers 429 with Retry-After.

    Each request is one round trip to the shared counter: these views are seldom called, and
    a per-process allowance would multiply the limit by the number of processes.
    """

    def allow_request(self, request, view) -> bool:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        self._wait = (window + 1) * WINDOW_SECONDS - now
        address = client_address(request) or "unknown"
        total = window_count(f"throttle:address:{address}:{window}")
        return total <= settings.CASHBACK_ANONYMOUS_RATE_LIMIT

    def wait(self) -> float:
        return self._wait


# The username failed admin logins are counted under when it names no account that can sign
# in to the admin: not one a form accepts, so no account's own count is ever this one.
UNKNOWN_USERNAME = "(unknown username)"


def lockout_username(request, credentials: dict | None) -> str | None:
    """The username a login attempt counts under (django-axes's AXES_USERNAME_CALLABLE): its
    own when it names an active staff account, else UNKNOWN_USERNAME. Every unknown username
    from one address then counts together, so that guessing new names, each of which costs a
    password hash, is locked out after ADMIN_LOGIN_FAILURE_LIMIT failures like guessing one
    account's password; a staff account's own count is untouched by them."""
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD  # as django-axes and the admin's login form name it
    if credentials:
        username = credentials.get(field)
    else:
        username = getattr(request, "data", request.POST).get(field) if request else None
    if username is None:
        return None
    if request is not None and _unknown_locked_out(request):
        # The address is locked out for unknown usernames: every username from it is, alike,
        # so that the lockout tells nobody which usernames are staff accounts.
        return UNKNOWN_USERNAME
    # django-axes asks several times for one attempt: one query per attempt.
    known = getattr(request, "_lockout_usernames", None)
    if known is None:
        known = {}
        if request is not None:
            request._lockout_usernames = known
    if username not in known:
        known[username] = (
            "\x00" not in username
            and user_model._default_manager.filter(
                **{user_model.USERNAME_FIELD: username}, is_staff=True, is_active=True
            ).exists()
        )
    return username if known[username] else UNKNOWN_USERNAME


def _unknown_locked_out(request) -> bool:
    """Whether the request's address has failed with unknown usernames as often as the lockout
    allows, within the cool-off (asked once per request)."""
    locked = getattr(request, "_unknown_locked_out", None)
    address = client_address(request)
    if locked is None and address is None:
        locked = False
    if locked is None:
        locked = AccessAttempt.objects.filter(
            username=UNKNOWN_USERNAME,
            ip_address=address,
            failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
            attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME,
        ).exists()
        request._unknown_locked_out = locked
    return locked

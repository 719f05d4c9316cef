"""Where an earn by email spends its time, layer by layer, in this process.

The service's WSGI application serves `requests` earns by email (existing members) as gunicorn
would hand them over, without a network in between; each layer's function is wrapped with a
clock, and each layer is charged its own time (its time less that of the layers it calls), so
that the layers add up to the whole request. The database is the time spent in round trips to
PostgreSQL (statements, BEGIN with the first of a transaction, COMMIT, and the check of a
persistent connection at a request's first query), wherever they happen; Redis is
the shared cache's (the configuration generation, the throttle's counter). Own times under the
wrapped layers are wall-clock time, so a busy machine inflates the round trips most.
"""

import io
import json
import sys
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from functools import wraps

PATH = "/api/v1/cashback/cashback/earn"

REQUEST = "request: middleware, routing, Django's handler"
# (label, module, attribute path) in the order printed, after the whole request's own time.
LAYERS = [
    ("DRF view: Request, dispatch, response", "cashback.views", "CashbackViewSet.dispatch"),
    ("authentication (API key)", "apps_auth.authentication", "AppKeyAuthentication.authenticate"),
    ("scope check", "apps_auth.permissions", "_HasScope.has_permission"),
    ("throttle", "core.api.throttling", "AppRateThrottle.allow_request"),
    ("JSON parsing", "core.api.parsers", "DecimalJSONParser.parse"),
    ("validation (EarnSerializer)", "apps_auth.idempotency", "validated"),
    ("card read (Python)", "cashback.views", "card_get"),
    ("earn service (Python)", "cashback.views", "cashback_earn"),
    ("  wallet move (Python)", "cashback.models", "WalletManager.move"),
    ("  entry, lot and event save (Python)", "cashback.models", "LedgerEntryManager.append"),
    ("  webhook event rendering", "cashback.services.ledger", "entry_event_draft"),
    ("result serializer", "cashback.serializers", "EarnResultSerializer.to_representation"),
    ("rendering (JSON)", "rest_framework.response", "Response.rendered_content"),
    ("database: statements", "django.db.backends.utils", "CursorWrapper._execute"),
    ("database: COMMIT", "django.db.backends.base.base", "BaseDatabaseWrapper._commit"),
    ("database: connection check", "core.postgresql.base", "DatabaseWrapper.is_usable"),
    ("Redis round trips", "redis.client", "Pipeline.execute"),
    ("Redis round trips", "django.core.cache.backends.redis", "RedisCacheClient.get"),
    ("Redis round trips", "core.cache", "RedisCache.get_stored"),
]


class Clock:
    """Own time per label: a stack of running layers, each charged its time less its children's."""

    def __init__(self) -> None:
        self.own: dict[str, float] = defaultdict(float)
        self.stack: list[list] = []  # [label, children's time]

    @contextmanager
    def layer(self, label: str):
        self.stack.append([label, 0.0])
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            _, children = self.stack.pop()
            self.own[label] += elapsed - children
            if self.stack:
                self.stack[-1][1] += elapsed


def _wrap(clock: Clock, label: str, function):
    @wraps(function)
    def timed(*args, **kwargs):
        with clock.layer(label):
            return function(*args, **kwargs)

    return timed


def _patch(stack: ExitStack, clock: Clock, label: str, module_name: str, dotted: str) -> None:
    module = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
    *owners, name = dotted.split(".")
    owner = module
    for part in owners:
        owner = getattr(owner, part)
    raw = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name)
    if raw is None:  # inherited: patch it on this class
        raw = getattr(owner, name)
    if isinstance(raw, property):
        patched = property(_wrap(clock, label, raw.fget))
    else:
        patched = _wrap(clock, label, raw)
    setattr(owner, name, patched)
    stack.callback(setattr, owner, name, raw)


def wsgi_environ(
    shop: dict, body: bytes = b"", *, method: str = "POST", path: str = PATH, query: str = ""
) -> dict:
    """A request to the service as gunicorn hands it to the WSGI application, with the shop's
    credentials, behind the TLS-terminating proxy."""
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_X_APP_ID": shop["app_id"],
        "HTTP_X_API_KEY": shop["api_key"],
        "HTTP_X_FORWARDED_PROTO": "https",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def earn_layers(shop: dict, *, requests: int) -> str:
    """Serves `requests` earns by email and returns the table of the layers' shares."""
    import logging

    from config.wsgi import application

    logging.disable(logging.INFO)  # the access log line is not written, as with a quiet log
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def serve(i: int) -> None:
        body = json.dumps(
            {
                "card_id": shop["card_id"],
                "email": f"bench{i % shop['members']}@example.com",
                "purchase_amount": 50,
            }
        ).encode()
        result = application(wsgi_environ(shop, body), start_response)
        b"".join(result)
        result.close()

    for i in range(200):  # warm: the key cache, the statements' text, the connection
        serve(i)
    clock = Clock()
    with ExitStack() as stack:
        for label, module, dotted in LAYERS:
            _patch(stack, clock, label, module, dotted)
        statuses.clear()
        started = time.perf_counter()
        for i in range(requests):
            with clock.layer(REQUEST):
                serve(i)
        total = time.perf_counter() - started
    logging.disable(logging.NOTSET)
    failed = [s for s in statuses if not s.startswith("200")]
    per_request = total / requests * 1e6
    failure = f"; FAILED: {failed[0]}" if failed else ""
    lines = [
        f"\nwhere an earn by email spends its time ({requests:,} requests served in this "
        f"process, no network: {per_request:,.0f} µs each{failure})",
        f"  {'layer (own time)':<48} {'µs':>6} {'share':>6}",
    ]
    seen: list[str] = []
    for label in [REQUEST, *(label for label, _, _ in LAYERS)]:
        if label in seen:
            continue
        seen.append(label)
        own = clock.own.get(label, 0.0) / requests * 1e6
        lines.append(f"  {label:<48} {own:>6.0f} {own / per_request:>6.1%}")
    return "\n".join(lines)

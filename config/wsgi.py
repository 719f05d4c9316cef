"""The WSGI application: requests under /api/ through `API_MIDDLEWARE`, the rest (the back
office, health checks) through `MIDDLEWARE`.

The API authenticates by key and answers JSON: sessions, CSRF, users, messages, static files and
the admin's lockouts are the back office's, and running them on every API request cost a worker
a tenth of an earn (see the changelog's benchmark runs).
"""

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

API_PREFIX = "/api/"


@contextmanager
def api_middleware() -> Iterator[None]:
    """While a handler builds its chain (Django builds it from settings.MIDDLEWARE, once,
    before its first request), the API's middleware stands in for all of it."""
    everything = settings.MIDDLEWARE
    settings.MIDDLEWARE = settings.API_MIDDLEWARE
    try:
        yield
    finally:
        settings.MIDDLEWARE = everything


class ApiHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        with api_middleware():
            super().load_middleware(is_async)


class Application:
    def __init__(self) -> None:
        self.api = ApiHandler()
        self.site = WSGIHandler()

    def __call__(self, environ, start_response):
        handler = self.api if environ.get("PATH_INFO", "").startswith(API_PREFIX) else self.site
        return handler(environ, start_response)


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)
application = Application()
# What is loaded by now lives as long as the process: the collector's full passes, which pause a
# request, need not walk it again (and, loaded before gunicorn forks, its pages stay shared).
gc.freeze()

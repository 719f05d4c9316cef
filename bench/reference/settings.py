"""Bare Django + DRF around the service's statements (bench/reference/urls.py): the ceiling the
benchmark measures the service against. The database connection is the service's (its engine,
`core.postgresql`, which checks a kept connection without a round trip; persistent connections;
prepared statements, each keeping its generic plan), the cache is the service's Redis, the
parser and renderer are the service's JSON ones; no middleware, authentication, permission or
throttle."""

import os

import environ

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "rest_framework"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.reference.urls"
DATABASES = {
    "default": {
        **environ.Env().db("DATABASE_URL"),
        "ENGINE": "core.postgresql",
        "CONN_MAX_AGE": int(os.environ.get("CONN_MAX_AGE", "600")),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"prepare_threshold": 5},
    }
}
DATABASE_PREPARED_STATEMENTS = True
DATABASE_POOLER = ""  # straight to PostgreSQL, as the benchmark runs the service
CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": os.environ["REDIS_URL"]}}
USE_TZ = True
REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.DecimalJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.api.negotiation.JsonContentNegotiation",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": False,
}
# A request the reference cannot serve is an error of the benchmark's: written to the server's
# log, as the service writes its own.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}

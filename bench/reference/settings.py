"""Bare Django + DRF: the framework's ceiling for an earn's essential SQL, for comparison."""

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
        "CONN_MAX_AGE": int(os.environ.get("CONN_MAX_AGE", "600")),
        "CONN_HEALTH_CHECKS": True,
    }
}
USE_TZ = True
REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

"""gunicorn settings: `gunicorn -c gunicorn.conf.py config.wsgi` (make run does this)."""

import multiprocessing
import os

bind = os.environ.get(
    "BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
# Sync workers, one per core by default: each request is a short, database-bound transaction.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
# Load the application once in the master, so workers fork with it (faster start, shared pages).
preload_app = True
# The application writes its own structured access lines (logger cashback.access).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

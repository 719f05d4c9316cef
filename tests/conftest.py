from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from rest_framework.test import APIClient, ForceAuthClientHandler

from apps_auth.models import App
from apps_auth.selectors import api_key_cache_clear
from apps_auth.services import api_key_create
from bench.harness import free_port
from bench.postgres import SERVER_USER, pgbouncer, remove_folder, server_folder
from cards.selectors import card_cache_clear
from config.wsgi import api_middleware
from core.api.throttling import BatchedAllowance
from members.tokens import member_token_issue
from programme.services import programme_cache_clear
from tests.factories import AppFactory, CardFactory, MemberFactory

# A run under CI fails on a skipped test (tests/ci_guard.py).
pytest_plugins = ["tests.ci_guard"]

# The test modules whose outcome depends on the PostgreSQL server's version: migrations, the
# hand-written SQL statements and what the planner does with them, concurrency and locks, the
# database's own constraints, triggers and notifications, a server stopped and restarted. CI
# runs the whole suite on the embedded server and these again on the machine's server
# (`-m server`), which keeps the run within its time.
SERVER_DEPENDENT = {
    "tests/cards/test_card_currency.py",
    "tests/cashback/test_concurrency.py",
    "tests/cashback/test_earn.py",
    "tests/cashback/test_earn_members.py",
    "tests/cashback/test_expiry.py",
    "tests/cashback/test_expiry_policies.py",
    "tests/cashback/test_history.py",
    "tests/cashback/test_history_cost.py",
    "tests/cashback/test_holding.py",
    "tests/cashback/test_idempotency.py",
    "tests/cashback/test_ledger_model.py",
    "tests/cashback/test_lifecycle_at_read_time.py",
    "tests/cashback/test_lifecycle_races.py",
    "tests/cashback/test_query_counts.py",
    "tests/cashback/test_redeem.py",
    "tests/cashback/test_refund.py",
    "tests/cashback/test_reverse.py",
    "tests/cashback/test_statements.py",
    "tests/cashback/test_verify_ledger.py",
    "tests/config/test_database_outage.py",
    "tests/config/test_migrations.py",
    "tests/config/test_pgbouncer.py",
    "tests/config/test_sharding_readiness.py",
    "tests/core/test_cache_table.py",
    "tests/core/test_connections.py",
    "tests/core/test_postgresql_backend.py",
    "tests/core/test_prepared_statements.py",
    "tests/core/test_queries.py",
    "tests/core/test_replicas.py",
    "tests/members/test_identity.py",
    "tests/members/test_otp_limits.py",
    "tests/members/test_otp_sent_migration.py",
    "tests/programme/test_budget_race.py",
    "tests/programme/test_literal_sql.py",
    "tests/programme/test_one_member_at_a_time.py",
    "tests/programme/test_quote.py",
    "tests/webhooks/test_deliveries.py",
    "tests/webhooks/test_dispatch.py",
    "tests/webhooks/test_endpoints.py",
    "tests/webhooks/test_worker_direct_connection.py",
    "tests/webhooks/test_worker_survives_database_restart.py",
}


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent.parent
    for item in items:
        if item.path.relative_to(root).as_posix() in SERVER_DEPENDENT:
            item.add_marker(pytest.mark.server)


@dataclass
class Merchant:
    app: App
    api_key: str
    client: APIClient


class _ApiClientHandler(ForceAuthClientHandler):
    """The test client's handler, through the API's middleware as config.wsgi serves the API."""

    def load_middleware(self, is_async=False):
        with api_middleware():
            super().load_middleware(is_async)


def _merchant(**app_fields) -> Merchant:
    app = AppFactory.create(**app_fields)
    raw_key = api_key_create(app=app).raw_key
    client = APIClient(headers={"X-App-Id": app.app_id, "X-Api-Key": raw_key})
    client.handler = _ApiClientHandler(enforce_csrf_checks=False)
    client.default_format = "json"
    return Merchant(app=app, api_key=raw_key, client=client)


@pytest.fixture
def reconnects(settings):
    """The settings, for a test that changes how a connection is set up (prepared statements,
    a pooler): the connection is closed after it, so that the next test's opens under the
    settings restored."""
    yield settings
    connection.close()


@pytest.fixture
def make_merchant(db):
    return _merchant


@pytest.fixture
def merchant(make_merchant) -> Merchant:
    return make_merchant()


@pytest.fixture
def api(merchant) -> APIClient:
    return merchant.client


@pytest.fixture
def card(merchant):
    return CardFactory.create(app=merchant.app)


@pytest.fixture
def member(merchant):
    return MemberFactory.create(app=merchant.app)


@pytest.fixture
def member_token(merchant, member) -> str:
    return member_token_issue(app=merchant.app, member_id=member.pk).token


@pytest.fixture
def other_merchant(make_merchant) -> Merchant:
    return make_merchant(name="Another merchant")


@pytest.fixture(autouse=True)
def _fast_pin_hashing(settings):
    # PINs use Django's password hashers; the fast one keeps the suite quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_http(settings):
    # The production posture redirects HTTP to HTTPS; the test client speaks plain HTTP.
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _fresh_key_cache(monkeypatch):
    # Each test starts from the database: keys, apps, cards and revocations of earlier tests
    # are gone, and so are the requests this process held of their rate windows.
    api_key_cache_clear()
    card_cache_clear()
    programme_cache_clear()
    monkeypatch.setattr("core.api.throttling.allowance", BatchedAllowance())
    yield
    api_key_cache_clear()
    card_cache_clear()
    programme_cache_clear()


@pytest.fixture
def shared_cache_off_the_database(settings):
    """Production counts throttles in Redis, off the database; an in-memory cache stands in
    for it where a test counts database queries."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


# PgBouncer in front of the test database: at most this many server sessions.
POOL_SIZE = 2


@pytest.fixture
def bouncer(transactional_db):
    """PgBouncer in transaction pooling in front of the test database, POOL_SIZE server
    sessions at most; yields (bouncer, the test database's name, its direct URL)."""
    params = connection.get_connection_params()
    host, port = str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
    name, user = params["dbname"], params["user"]
    # On a Unix socket (the embedded server), PgBouncer runs as the owner of its folder.
    run_as = Path(host).owner() if host.startswith("/") else SERVER_USER
    folder = server_folder("cashback-test-pgbouncer-", run_as)
    try:
        with pgbouncer(
            folder,
            free_port(),
            {name: f"host={host} port={port} dbname={name}"},
            user=user,
            run_as=run_as,
            default_pool_size=str(POOL_SIZE),
        ) as running:
            yield running, name, direct_url(user, host, port, name)
    finally:
        remove_folder(folder)


def admin_show(bouncer, what: str, database: str) -> list[dict]:
    with psycopg.connect(bouncer.admin_url(), autocommit=True, prepare_threshold=None) as admin:
        cursor = admin.execute(f"SHOW {what}")
        columns = [c.name for c in cursor.description or ()]
        rows = (dict(zip(columns, row, strict=True)) for row in cursor)
        return [row for row in rows if row["database"] == database]


def direct_url(user: str, host: str, port: int, name: str) -> str:
    if host.startswith("/"):  # a Unix socket's folder: PGHOST and PGPORT name it
        return f"postgres://{user}@/{name}"
    return f"postgres://{user}@{host}:{port}/{name}"

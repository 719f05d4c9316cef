"""A revocation, or a card's change, is in force for the very next request in every server
process: gunicorn with two workers, each holding the key (and the card) in its cache, refuses
the key as soon as `revoke_api_key` returns, and earns at the card's new rate as soon as the
card is saved."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps_auth.services import app_create
from bench.harness import gunicorn
from cards.services import card_create

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
CARDS = "/api/v1/cashback/cards"
EARN = "/api/v1/cashback/cashback/earn"


def _server_env(cache_url: str) -> dict:
    """The test database (and this process's SECRET_KEY, which keys the API key digests)."""
    params = connection.get_connection_params()
    return {
        "DATABASE_URL": f"postgres://{params['user']}@/{params['dbname']}",
        "PGHOST": str(params.get("host") or "127.0.0.1"),
        "PGPORT": str(params.get("port") or 5432),
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "true",
        "REDIS_URL": cache_url,  # empty: the database cache
        # Keys held an hour: only the revocation itself can explain a refusal.
        "API_KEY_CACHE_SECONDS": "3600",
    }


@pytest.fixture(params=["database cache", "redis"])
def two_workers(request, tmp_path, settings):
    """gunicorn with two sync workers on the test database and the shared cache this process
    uses too; yields (base url, env, access log). The access log names the worker (pid) that
    answered each request."""
    cache_url = "redis://127.0.0.1:6379/14" if request.param == "redis" else ""
    if cache_url:
        settings.REDIS_URL = cache_url
        settings.CACHES = {
            "default": {
                "BACKEND": "core.cache.RedisCache",
                "LOCATION": cache_url,
            }
        }
    env = _server_env(cache_url)
    access_log = tmp_path / "access.log"
    access = (f"--access-logfile={access_log}", "--access-logformat=%(p)s %(s)s")
    with gunicorn(
        "config.wsgi", env, workers=2, health="/healthz", log=tmp_path / "server.log", args=access
    ) as (base, _):
        yield base, {**os.environ, **env}, access_log


def _statuses(base: str, headers: dict, n: int) -> list[int]:
    """`n` requests, eight at a time on separate connections, so both workers take some."""

    def one(_):
        request = urllib.request.Request(base + CARDS, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def _workers_by_status(access_log: Path, since: int) -> dict[str, set[str]]:
    lines = access_log.read_text().splitlines()[since:]
    seen: dict[str, set[str]] = {}
    for line in lines:
        match = re.fullmatch(r"<(\d+)> (\d+)", line)
        assert match, line
        pid, status = match.groups()
        seen.setdefault(status, set()).add(pid)
    return seen


def _log_lines(access_log: Path) -> int:
    return len(access_log.read_text().splitlines()) if access_log.exists() else 0


def _held_by_both_workers(base: str, headers: dict, access_log: Path) -> None:
    """Requests until both workers have accepted the key, and so hold it in their caches."""
    for _ in range(10):
        start = _log_lines(access_log)
        assert set(_statuses(base, headers, 40)) == {200}
        time.sleep(0.2)  # gunicorn writes the access line after the answer
        if len(_workers_by_status(access_log, start).get("200", set())) == 2:
            return
    pytest.fail("the requests never reached both workers")


def test_a_revoked_key_is_refused_by_every_worker_as_soon_as_the_command_returns(two_workers):
    base, env, access_log = two_workers
    app, issued = app_create(name="Till", scopes=["card_read"], rate_limit_per_minute=100_000)
    headers = {"X-App-Id": app.app_id, "X-Api-Key": issued.raw_key}

    _held_by_both_workers(base, headers, access_log)

    revoke = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "revoke_api_key",
            "--app",
            app.app_id,
            "--key",
            issued.raw_key,
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert revoke.returncode == 0, revoke.stderr
    start = _log_lines(access_log)

    assert _statuses(base, headers, 20) == [401] * 20
    time.sleep(0.2)
    answered = _workers_by_status(access_log, start)
    assert set(answered) == {"401"}
    assert len(answered["401"]) == 2, "both workers refused the key"


def test_a_deactivated_app_is_refused_by_every_worker_at_once(two_workers):
    base, env, access_log = two_workers
    app, issued = app_create(name="Shop", scopes=["card_read"], rate_limit_per_minute=100_000)
    headers = {"X-App-Id": app.app_id, "X-Api-Key": issued.raw_key}
    _held_by_both_workers(base, headers, access_log)

    app.is_active = False
    app.save()  # as the back office does; committed at once here (autocommit)
    start = _log_lines(access_log)

    assert _statuses(base, headers, 20) == [401] * 20
    time.sleep(0.2)
    answered = _workers_by_status(access_log, start)
    assert set(answered) == {"401"}
    assert len(answered["401"]) == 2, "both workers refused the app"


def _earned(base: str, headers: dict, card_id: int, n: int) -> list[str]:
    """`n` earns of 100 (a new member each), eight at a time; each one's cashback_earned."""

    def one(i):
        body = {"card_id": card_id, "email": f"m{time.time_ns()}-{i}@example.com"}
        request = urllib.request.Request(
            base + EARN,
            data=json.dumps({**body, "purchase_amount": "100"}).encode(),
            headers={**headers, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["data"]["cashback_earned"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def test_a_card_s_new_rate_is_earned_by_every_worker_as_soon_as_it_is_saved(two_workers):
    base, env, access_log = two_workers
    app, issued = app_create(name="Till", scopes=["cashback_write"], rate_limit_per_minute=100_000)
    card = card_create(app=app, name="Card", cashback_percentage=Decimal(5))
    headers = {"X-App-Id": app.app_id, "X-Api-Key": issued.raw_key}
    for _ in range(10):  # until both workers have earned on the card, and so hold it
        start = _log_lines(access_log)
        assert set(_earned(base, headers, card.pk, 40)) == {"5.0"}
        time.sleep(0.2)
        if len(_workers_by_status(access_log, start).get("200", set())) == 2:
            break
    else:
        pytest.fail("the earns never reached both workers")

    card.cashback_percentage = Decimal(8)
    card.save()  # as the back office does; committed at once here (autocommit)
    start = _log_lines(access_log)

    assert _earned(base, headers, card.pk, 20) == ["8.0"] * 20
    time.sleep(0.2)
    assert len(_workers_by_status(access_log, start)["200"]) == 2, "both workers earned"

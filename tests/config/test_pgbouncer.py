"""The service through a real PgBouncer in transaction pooling (Debian's, 1.18: no prepared
statements across pooled sessions): many concurrent earns and reads on a few server sessions,
each in UTC. The worker's direct connection: tests/webhooks/test_worker_direct_connection.py."""

import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from bench.harness import gunicorn
from bench.postgres import pgbouncer_program
from cashback.models import LedgerEntry
from tests.conftest import POOL_SIZE, admin_show

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(pgbouncer_program() is None, reason="pgbouncer is not installed"),
]

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1/cashback/cashback"


def call(base: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, headers={**headers, "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_settings_turn_off_what_a_transaction_pooler_cannot_carry():
    script = (
        "from django.conf import settings; d = settings.DATABASES; "
        "print(d['default']['OPTIONS'], d['default']['DISABLE_SERVER_SIDE_CURSORS'], "
        "d['worker']['HOST'], d['worker']['PORT'], d['worker'].get('OPTIONS'))"
    )
    run = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": "postgres://cashback@127.0.0.1:6432/cashback",
            "DATABASE_POOLER": "transaction",
            "WORKER_DATABASE_URL": "postgres://cashback@db.internal:5432/cashback",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.split("\n")[0] == "{'prepare_threshold': None} True db.internal 5432 {}"


def test_many_concurrent_earns_and_reads_through_pgbouncer_in_transaction_pooling(
    bouncer, tmp_path, merchant, card
):
    running, name, _ = bouncer
    env = {
        "DATABASE_URL": running.url(name),
        "DATABASE_POOLER": "transaction",
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "true",
    }
    headers = {"X-App-Id": merchant.app.app_id, "X-Api-Key": merchant.api_key}
    threads = ["--worker-class=gthread", "--threads=6"]
    with gunicorn(
        "config.wsgi", env, workers=2, health="/healthz", log=tmp_path / "s.log", args=threads
    ) as (base, _):

        def till(n: int) -> list[int]:
            statuses = []
            email = f"till{n}@example.com"
            for sale in range(15):
                body = {"card_id": card.pk, "email": email, "purchase_amount": "20"}
                status, answer = call(
                    base, f"{API}/earn", {**headers, "Idempotency-Key": f"t{n}-{sale}"}, body
                )
                statuses.append(status)
                member = answer["data"]["member_id"]
                query = f"?card_id={card.pk}&member_id={member}"
                statuses.append(call(base, f"{API}/balance{query}", headers)[0])
                statuses.append(call(base, f"{API}/history{query}&limit=5", headers)[0])
            return statuses

        with ThreadPoolExecutor(12) as pool:
            statuses = [s for till_statuses in pool.map(till, range(12)) for s in till_statuses]
        clients = admin_show(running, "CLIENTS", name)
        servers = admin_show(running, "SERVERS", name)

    assert set(statuses) == {200}
    assert LedgerEntry.objects.count() == 12 * 15
    assert sum(e.amount for e in LedgerEntry.objects.all()) == Decimal(12 * 15)
    # The service's persistent connections, many more than the server sessions serving them.
    assert len(clients) > POOL_SIZE
    assert 1 <= len(servers) <= POOL_SIZE
    with psycopg.connect(running.url(name), prepare_threshold=None) as through:
        assert through.execute("SHOW TimeZone").fetchone() == ("UTC",)

"""The worker outlives its database: PostgreSQL restarted under a running `manage.py worker`
(a server of the test's own, stopped and started again as a restart or a failover does), the
worker reconnects by itself and carries on: the events recorded before, during and after the
restart all reach a real receiver, each once, and its periodic jobs run again."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import psycopg
import pytest

from bench.harness import PYTHON, ROOT, free_port, gunicorn, manage, production_env
from bench.postgres import initdb, remove_folder, server_folder
from tests.webhooks.conftest import FAST_WORKER, wait_until


@pytest.fixture
def server():
    """A PostgreSQL server of the test's own, migrated, removed afterwards."""
    folder = server_folder("cashback-worker-restart")
    cluster = initdb(folder, free_port())
    try:
        yield cluster
    finally:
        cluster.stop_quietly()
        remove_folder(folder)


def _earn(base: str, app: dict, card_id: int, n: int) -> int:
    """An earn, retried until the API answers (it answers 503 while the database is down)."""
    body = json.dumps(
        {"card_id": card_id, "email": f"member{n}@example.com", "purchase_amount": "10.000"}
    )
    deadline = time.monotonic() + 60
    while True:
        request = urllib.request.Request(
            f"{base}/api/v1/cashback/cashback/earn",
            data=body.encode(),
            headers={
                "Content-Type": "application/json",
                "X-App-Id": app["app_id"],
                "X-Api-Key": app["api_key"],
                "Idempotency-Key": f"restart-{n}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["data"]["transaction_id"]
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_the_worker_carries_on_when_postgresql_restarts(server, make_receiver, tmp_path):
    url = server.url()
    env = production_env(
        url,
        "worker-restart",
        SECURE_SSL_REDIRECT="false",
        LOG_FORMAT="plain",
        CASHBACK_LIFECYCLE_CRON="* * * * * */1",
        **FAST_WORKER,
    )
    manage(env, "migrate", "--noinput", "--verbosity", "0")

    def command(*args: str) -> dict:
        return json.loads(manage(env, *args, "--json", capture=True).stdout)

    app = command(
        "create_api_app", "Restart", "--scopes", "cashback_read,cashback_write", "--mode", "test"
    )
    card = command("create_card", "--app", app["app_id"], "--name", "Card", "--percentage", "5")
    held_card = command(
        "create_card", "--app", app["app_id"], "--name", "Held", "--percentage", "5",
        "--holding-days", "1",
    )  # fmt: skip
    receiver = make_receiver()
    command("create_webhook_endpoint", "--app", app["app_id"], "--url", receiver.url)
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            [PYTHON, "manage.py", "worker"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with gunicorn(
            "config.wsgi", env, workers=1, health="/healthz", log=tmp_path / "web.log"
        ) as (
            base,
            _,
        ):
            earned = [_earn(base, app, card["id"], 1)]
            wait_until(lambda: len(receiver.received) == 1, what="the first event")

            server.stop("fast")
            time.sleep(2)  # the worker finds its connections gone
            server.start()
            earned.append(_earn(base, app, card["id"], 2))
            earned.append(_earn(base, app, card["id"], 3))
            wait_until(lambda: len(receiver.received) == 3, timeout=60, what="the later events")

            # The job queue's worker is back too: a held lot made due is released by it.
            held = _earn(base, app, held_card["id"], 4)
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(
                    "UPDATE cashback_lot SET available_at = now() - interval '1 second' "
                    "WHERE source_id = %s",
                    [held],
                )

                def released() -> bool:
                    found = db.execute(
                        "SELECT 1 FROM cashback_ledgerentry "
                        "WHERE entry_type = 'release' AND original_entry_id = %s",
                        [held],
                    ).fetchone()
                    return found is not None

                wait_until(released, timeout=60, what="the release after the restart")
            wait_until(lambda: len(receiver.received) == 5, timeout=60, what="every event")

        assert worker.poll() is None, log.read_text()[-3000:]
        bodies = [json.loads(r.body) for r in receiver.received]
        told = sorted(b["data"]["transaction_id"] for b in bodies if b["type"] == "cashback.earned")
        assert told == sorted([*earned, held])
        [release] = [b for b in bodies if b["type"] == "cashback.released"]
        assert release["data"]["original_transaction_id"] == held
        ids = [r.headers["webhook-id"] for r in receiver.received]
        assert len(set(ids)) == len(ids) == 5
        written = log.read_text()
        assert "starting it again" in written  # the job queue's worker stopped and came back
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()[-3000:]

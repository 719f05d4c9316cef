"""The background worker listens for new jobs (LISTEN/NOTIFY), which a transaction pooler
cannot carry: with WORKER_DATABASE_URL it listens on a connection straight to PostgreSQL while
its tasks' queries go through PgBouncer (DATABASE_URL)."""

import threading

import pytest
from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateWorker

from bench.postgres import pgbouncer_program
from tests.conftest import admin_show
from tests.webhooks.conftest import wait_until
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import webhook_endpoint_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(pgbouncer_program() is None, reason="pgbouncer is not installed"),
]

API = "/api/v1/cashback/cashback"


def test_the_worker_listens_on_its_direct_connection_while_its_tasks_go_through_pgbouncer(
    bouncer, merchant, card, member, receiver, start_worker
):
    running, name, direct = bouncer
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    # Polling once a minute: only a notification on the worker's LISTEN can wake it in time.
    worker = start_worker(
        DATABASE_URL=running.url(name),
        DATABASE_POOLER="transaction",
        WORKER_DATABASE_URL=direct,
        WORKER_POLL_SECONDS="60",
    )
    wait_until(ProcrastinateWorker.objects.exists, what="the worker to start")
    listening = threading.Event()

    def listens() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %%'")
            if cursor.fetchone()[0]:
                listening.set()
        return listening.is_set()

    wait_until(listens, what="the worker to listen")
    response = merchant.client.post(
        f"{API}/earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "50"}
    )
    assert response.status_code == 200
    [delivery] = WebhookDelivery.objects.all()
    wait_until(
        lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DELIVERED,
        timeout=20,
        what="the delivery",
    )
    assert len(receiver.received) == 1
    assert worker.poll() is None
    # The worker's tasks took their server sessions through PgBouncer.
    assert admin_show(running, "SERVERS", name)

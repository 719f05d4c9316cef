"""The worker's delivery loop in this process (`webhooks.dispatch.Deliveries`): it does not spin
on an app whose deliveries due are being attempted by another worker."""

import threading
import time

import pytest
from django.db import connection

from webhooks import dispatch
from webhooks.models import WebhookDelivery
from webhooks.services import event_record, webhook_endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_delivery_another_worker_is_attempting_is_left_alone_until_the_poll(
    merchant, monkeypatch
):
    webhook_endpoint_create(app=merchant.app, url="http://127.0.0.1:9/hooks")
    event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={"n": 1})
    [delivery] = WebhookDelivery.objects.all()
    other_worker = connection.get_new_connection(connection.get_connection_params())
    # Another worker holds the delivery: its POST may take seconds.
    other_worker.execute(
        "SELECT 1 FROM webhooks_webhookdelivery WHERE id = %s FOR UPDATE", [delivery.pk]
    )
    asked: list[str] = []
    real_due, real_next = dispatch.webhook_apps_due, dispatch.webhook_delivery_attempt_next

    def due(**kwargs):
        asked.append("due")
        return real_due(**kwargs)

    def attempt_next(**kwargs):
        asked.append("attempt")
        return real_next(**kwargs)

    monkeypatch.setattr(dispatch, "webhook_apps_due", due)
    monkeypatch.setattr(dispatch, "webhook_delivery_attempt_next", attempt_next)
    stop = threading.Event()
    deliveries = dispatch.Deliveries(slots=8, per_app=2, poll_seconds=2.0, listen_alias="default")
    loop = threading.Thread(target=deliveries.run, args=(stop,))
    loop.start()
    try:
        time.sleep(1.5)
    finally:
        stop.set()
        loop.join(10)
        other_worker.rollback()
        other_worker.close()
    # Once found held, the app waits for the next notification or poll: a few questions, not
    # hundreds.
    assert asked.count("attempt") <= 4, asked
    assert asked.count("due") <= 4, asked

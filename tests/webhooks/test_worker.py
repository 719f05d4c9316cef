"""Deliveries by the real worker (`manage.py worker` subprocesses) to real receivers on
loopback: signed once, retried with backoff, caught up after an outage, and not lost when a
worker is killed in the middle of one."""

import json
import signal
import threading

import pytest
from procrastinate.contrib.django.models import ProcrastinateWorker
from standardwebhooks import Webhook

from tests.webhooks.conftest import wait_until
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from webhooks.services import event_record, webhook_endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)

EARN = "/api/v1/cashback/cashback/earn"


def _delivered(delivery_id: int) -> bool:
    return WebhookDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.DELIVERED


def test_an_earn_is_posted_once_signed_as_standard_webhooks_say(
    merchant, card, member, receiver, start_worker
):
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    start_worker()
    response = merchant.client.post(
        EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "50.00"}
    )
    assert response.status_code == 200
    [delivery] = WebhookDelivery.objects.all()
    wait_until(lambda: _delivered(delivery.pk), what="the delivery")

    [got] = receiver.received
    event = WebhookEvent.objects.get()
    body = Webhook(endpoint.secret).verify(got.body, got.headers)
    assert got.body.decode() == event.body
    assert body["id"] == got.headers["webhook-id"] == event.public_id
    assert got.headers["content-type"] == "application/json"
    assert got.path == "/hooks/cashback"
    assert body["type"] == "cashback.earned"
    assert body["app_id"] == merchant.app.app_id
    assert body["data"] == response.json()["data"]
    # Amounts are exact JSON numbers, as the API writes them.
    assert '"cashback_earned":2.500' in got.body.decode()
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.next_attempt_at) == (
        1,
        200,
        None,
    )


def test_a_receiver_answering_500_twice_gets_the_same_event_three_times(
    merchant, make_receiver, start_worker
):
    receiver = make_receiver(answers=[500, 500])
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    start_worker()
    event = event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={"n": 1})
    delivery = WebhookDelivery.objects.get()
    wait_until(lambda: _delivered(delivery.pk), what="the delivery")

    assert [r.headers["webhook-id"] for r in receiver.received] == [event.public_id] * 3
    delivery.refresh_from_db()
    assert delivery.attempts == 3
    assert delivery.last_status_code == 200
    assert delivery.delivered_at is not None


def test_a_receiver_down_for_a_while_gets_the_event_once_it_is_back(
    merchant, make_receiver, start_worker
):
    down = make_receiver()
    port, url = down.port, down.url
    down.stop()  # nothing listens on the port: connections are refused
    webhook_endpoint_create(app=merchant.app, url=url)
    start_worker()
    event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={"n": 1})
    delivery = WebhookDelivery.objects.get()
    wait_until(
        lambda: WebhookDelivery.objects.get(pk=delivery.pk).attempts >= 2, what="two attempts"
    )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code is None
    assert "refused" in delivery.last_error.lower()

    back = make_receiver(port=port)
    wait_until(lambda: _delivered(delivery.pk), what="the delivery")
    assert len(back.received) == 1


def test_a_worker_killed_in_the_middle_of_a_delivery_loses_nothing(
    merchant, make_receiver, start_worker
):
    hold = threading.Event()
    receiver = make_receiver(hold=hold)
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    first = start_worker()
    event = event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={"n": 1})
    delivery = WebhookDelivery.objects.get()
    wait_until(lambda: receiver.received, what="the first POST")

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    hold.set()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)

    # The dead worker's lock on the delivery went with its connection: still due, it is the
    # next worker's.
    start_worker()
    wait_until(lambda: _delivered(delivery.pk), timeout=20, what="the delivery after the kill")
    assert {r.headers["webhook-id"] for r in receiver.received} == {event.public_id}
    assert len(receiver.received) == 2
    assert json.loads(receiver.received[1].body)["id"] == event.public_id


def test_the_worker_stops_on_sigterm(start_worker):
    worker = start_worker()
    wait_until(ProcrastinateWorker.objects.exists, what="the worker to register")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    assert not ProcrastinateWorker.objects.exists()

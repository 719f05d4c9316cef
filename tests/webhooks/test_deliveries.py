"""One attempt at a delivery, run in the test's process against real loopback receivers:
what is sent, what is recorded, when it is tried again, and where it may not go."""

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from apps_auth.models import Mode
from tests.factories import AppFactory
from webhooks import destinations
from webhooks.models import (
    DELIVERIES_CHANNEL,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.services import (
    event_record,
    webhook_delivery_attempt,
    webhook_delivery_attempt_next,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_secret_new,
)


def _record(app, event_type="cashback.earned", data=None) -> WebhookDelivery:
    event_record(app_id=app.pk, event_type=event_type, data=data or {"amount": 1})
    return WebhookDelivery.objects.get()


def _attempt(delivery: WebhookDelivery) -> WebhookDelivery:
    result = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert result is not None
    return result


def test_an_event_is_sent_to_each_endpoint_that_takes_its_type(merchant, other_merchant):
    everything = webhook_endpoint_create(app=merchant.app, url="http://127.0.0.1:9/all")
    earned = webhook_endpoint_create(
        app=merchant.app, url="http://127.0.0.1:9/earned", events=["cashback.earned"]
    )
    webhook_endpoint_create(
        app=merchant.app, url="http://127.0.0.1:9/redeemed", events=["cashback.redeemed"]
    )
    webhook_endpoint_delete(
        endpoint=webhook_endpoint_create(app=merchant.app, url="http://127.0.0.1:9/gone")
    )
    webhook_endpoint_create(app=other_merchant.app, url="http://127.0.0.1:9/other")

    event = event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={})
    deliveries = WebhookDelivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {everything.pk, earned.pk}
    # Due at once: the worker's queue is the pending deliveries due.
    assert {(d.status, d.next_attempt_at) for d in deliveries} == {
        (DeliveryStatus.PENDING, event.created_at)
    }


def test_an_event_without_endpoints_is_recorded_alone(merchant, django_assert_num_queries):
    with django_assert_num_queries(1):
        event = event_record(
            app_id=merchant.app.pk, event_type="cashback.redeemed", data={"amount": 2}
        )
    assert event.body.startswith(f'{{"id":"{event.public_id}","type":"cashback.redeemed"')
    assert f'"app_id":"{merchant.app.app_id}","data":{{"amount":2}}}}' in event.body
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_event_rolled_back_leaves_nothing_and_one_committed_wakes_the_worker(merchant):
    webhook_endpoint_create(app=merchant.app, url="http://127.0.0.1:9/hook")
    # A session of its own, as the worker listens on.
    listener = connection.get_new_connection(connection.get_connection_params())
    listener.autocommit = True
    listener.execute(f"LISTEN {DELIVERIES_CHANNEL}")

    def heard() -> int:
        return len(list(listener.notifies(timeout=0.5)))

    class Undone(Exception):
        pass

    def earn_that_fails_after_its_event():
        with transaction.atomic():
            event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={})
            assert WebhookDelivery.objects.count() == 1
            raise Undone

    try:
        with pytest.raises(Undone):
            earn_that_fails_after_its_event()
        assert not WebhookEvent.objects.exists()
        assert not WebhookDelivery.objects.exists()
        assert heard() == 0

        with transaction.atomic():
            event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={})
            assert heard() == 0  # not before it commits
        assert WebhookDelivery.objects.count() == 1
        assert heard() == 1
    finally:
        listener.close()


def test_a_failed_attempt_is_recorded_and_tried_again_later(merchant, make_receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 60
    receiver = make_receiver(answers=[503])
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    delivery = _record(merchant.app)

    before = timezone.now()
    delivery = _attempt(delivery)
    assert delivery.status == DeliveryStatus.PENDING
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        1,
        503,
        "HTTP 503",
    )
    assert delivery.first_attempt_at == delivery.last_attempt_at
    # Full jitter: anywhere up to the first ceiling.
    assert delivery.next_attempt_at is not None
    assert before <= delivery.next_attempt_at <= before + timedelta(seconds=61)
    # Not due: the worker finds nothing of the app's to attempt.
    assert webhook_delivery_attempt_next(app_id=merchant.app.pk) is None
    assert len(receiver.received) == 1


def test_past_the_retry_period_a_delivery_is_failed(merchant, make_receiver, settings):
    settings.WEBHOOK_RETRY_FOR_HOURS = 24
    receiver = make_receiver(answers=[500, 500])
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    delivery = _record(merchant.app)
    delivery = _attempt(delivery)
    assert delivery.status == DeliveryStatus.PENDING

    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        first_attempt_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    delivery = _attempt(delivery)
    assert delivery.status == DeliveryStatus.FAILED
    assert (delivery.attempts, delivery.last_status_code) == (2, 500)
    assert delivery.next_attempt_at is None


def test_a_delivery_to_a_deleted_endpoint_is_failed_without_a_post(merchant, receiver):
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    delivery = _record(merchant.app)
    webhook_endpoint_delete(endpoint=endpoint)
    delivery = _attempt(delivery)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 0
    assert "deleted" in delivery.last_error
    assert not receiver.received


def test_a_redirect_is_not_followed(merchant, make_receiver):
    receiver = make_receiver(answers=[302])
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    delivery = _attempt(_record(merchant.app))
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.PENDING, 302)
    assert len(receiver.received) == 1


def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(merchant, make_receiver):
    receiver = make_receiver()
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    old_secret = endpoint.secret
    endpoint = webhook_endpoint_rotate_secret(endpoint=endpoint)
    _attempt(_record(merchant.app))

    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint.secret, old_secret):
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "cashback.earned"
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_secret_new()).verify(got.body, got.headers)

    # Once the overlap is over, the old secret signs no more.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    event_record(app_id=merchant.app.pk, event_type="cashback.redeemed", data={})
    _attempt(WebhookDelivery.objects.get(event__event_type="cashback.redeemed"))
    later = receiver.received[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(endpoint.secret).verify(later.body, later.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(later.body, later.headers)


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body(merchant, receiver):
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    _attempt(_record(merchant.app))
    [got] = receiver.received
    key = base64.b64decode(endpoint.secret.removeprefix("whsec_"))
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert got.headers["webhook-signature"] == f"v1,{expected}"


@pytest.fixture
def names(monkeypatch):
    """A name → addresses table for the resolver; a name not in it does not resolve."""
    table: dict[str, list[str]] = {}

    def resolve(host, port):
        if host in table:
            return table[host]
        raise OSError(f"{host} does not resolve")

    monkeypatch.setattr(destinations, "resolve", resolve)
    return table


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"])
def test_a_live_app_never_posts_to_an_internal_address_its_name_now_resolves_to(
    make_merchant, receiver, names, address
):
    live = make_merchant(mode=Mode.LIVE)
    names["hooks.example.com"] = ["93.184.216.34"]  # public when it was registered
    url = f"https://hooks.example.com:{receiver.port}/hooks/cashback"
    webhook_endpoint_create(app=live.app, url=url)
    names["hooks.example.com"] = [address]  # and internal now (DNS rebinding)

    delivery = _attempt(_record(live.app))
    assert not receiver.received
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("Refused: ")
    assert address in delivery.last_error


def test_a_test_mode_app_delivers_to_loopback(merchant, receiver):
    assert merchant.app.mode == Mode.TEST
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    delivery = _attempt(_record(merchant.app))
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(receiver.received) == 1


def test_the_post_goes_to_the_address_checked_with_the_url_s_host(merchant, receiver, names):
    names["hooks.invalid"] = ["127.0.0.1"]
    webhook_endpoint_create(app=merchant.app, url=f"http://hooks.invalid:{receiver.port}/in?x=1")
    delivery = _attempt(_record(merchant.app))
    assert delivery.status == DeliveryStatus.DELIVERED
    [got] = receiver.received
    assert got.headers["host"] == f"hooks.invalid:{receiver.port}"
    assert got.path == "/in?x=1"


def test_the_worker_attempts_an_app_s_deliveries_due_the_longest_first(merchant, receiver):
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    for n in range(3):
        event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={"n": n})
    other = AppFactory.create()
    webhook_endpoint_create(app=other, url=receiver.url)
    event_record(app_id=other.pk, event_type="cashback.earned", data={"n": "other"})
    first, second, third = WebhookDelivery.objects.filter(app=merchant.app).order_by("id")
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=first.pk).update(next_attempt_at=now - timedelta(seconds=1))
    WebhookDelivery.objects.filter(pk=second.pk).update(next_attempt_at=now - timedelta(seconds=9))
    WebhookDelivery.objects.filter(pk=third.pk).update(next_attempt_at=now + timedelta(hours=1))

    attempted = [webhook_delivery_attempt_next(app_id=merchant.app.pk) for _ in range(3)]
    assert [d.pk if d else None for d in attempted] == [second.pk, first.pk, None]
    # Another app's delivery is that app's to attempt.
    assert WebhookDelivery.objects.get(app=other).status == DeliveryStatus.PENDING


def test_an_app_s_own_endpoints_only(merchant):
    other = AppFactory.create()
    webhook_endpoint_create(app=other, url="http://127.0.0.1:9/other")
    event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={})
    assert not WebhookDelivery.objects.exists()

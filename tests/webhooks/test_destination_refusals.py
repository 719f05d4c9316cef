"""Where a webhook may not go, as an app meets it: refused with `400 validation_error` on `url`
when the endpoint is registered, and as a failed attempt (nothing POSTed) when a delivery is
tried."""

import threading
import time

import pytest

from apps_auth.models import Mode
from tests.helpers import error
from webhooks import destinations
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import event_record, webhook_delivery_attempt, webhook_endpoint_create

WEBHOOKS = "/api/v1/cashback/webhooks"


@pytest.fixture
def names(monkeypatch):
    """A name → addresses table for the resolver; `slow` holds back the names in it until the
    test is over (or 3 s)."""
    table: dict[str, list[str]] = {"hooks.example.com": ["93.184.216.34"]}
    slow: set[str] = set()
    released = threading.Event()

    def resolve(host, port):
        if host in slow:
            released.wait(3)
        if host in table:
            return table[host]
        raise OSError(f"{host} does not resolve")

    monkeypatch.setattr(destinations, "resolve", resolve)
    yield table, slow
    released.set()


def _attempt(app) -> WebhookDelivery:
    event_record(app_id=app.pk, event_type="cashback.earned", data={"amount": 1})
    delivery = WebhookDelivery.objects.get()
    result = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert result is not None
    return result


def _refused_on_url(response) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    [message] = body["error"]["details"]["url"]
    assert body == error("validation_error", details={"url": [message]})
    return message


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/ho\tok",
        "https://hooks.exa\r\nmple.com/hook",
        "https://hooks.example.com/hook\r\nX-Injected: yes",
    ],
)
def test_a_live_app_registering_a_url_with_control_characters_gets_400(make_merchant, names, url):
    live = make_merchant(mode=Mode.LIVE)
    _refused_on_url(live.client.post(WEBHOOKS, {"url": url}))
    assert not WebhookEndpoint.objects.exists()


def test_a_url_stored_with_a_line_break_is_refused_at_delivery(merchant, receiver):
    # As an earlier release may have stored it: the check then read the URL with the line
    # break stripped.
    WebhookEndpoint.objects.create(
        app=merchant.app,
        url=f"http://127.0.0.1:{receiver.port}/hooks/\r\ncashback",
        events=[],
        secret="whsec_c2VjcmV0",
    )
    delivery = _attempt(merchant.app)
    assert not receiver.received
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_error.startswith("Refused: ")


def test_a_test_app_cannot_register_loopback_where_loopback_is_not_allowed(merchant, settings):
    settings.CASHBACK_WEBHOOK_ALLOW_LOOPBACK = False
    assert merchant.app.mode == Mode.TEST
    message = _refused_on_url(
        merchant.client.post(WEBHOOKS, {"url": "http://127.0.0.1:9000/cashback"})
    )
    assert "127.0.0.1" in message
    assert not WebhookEndpoint.objects.exists()


def test_a_test_app_s_loopback_endpoint_gets_nothing_once_loopback_is_not_allowed(
    merchant, receiver, settings
):
    webhook_endpoint_create(app=merchant.app, url=receiver.url)  # allowed then
    settings.CASHBACK_WEBHOOK_ALLOW_LOOPBACK = False
    delivery = _attempt(merchant.app)
    assert not receiver.received
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_error.startswith("Refused: ")
    assert "127.0.0.1" in delivery.last_error


def test_registering_a_name_that_does_not_resolve_in_time_is_400(make_merchant, names, settings):
    settings.WEBHOOK_RESOLVE_TIMEOUT_SECONDS = 0.2
    _, slow = names
    slow.add("hooks.example.com")
    live = make_merchant(mode=Mode.LIVE)
    started = time.monotonic()
    message = _refused_on_url(
        live.client.post(WEBHOOKS, {"url": "https://hooks.example.com/cashback"})
    )
    assert time.monotonic() - started < 1.5
    assert message == "The host hooks.example.com does not resolve in time."


def test_a_name_that_does_not_resolve_in_time_fails_the_attempt_in_time(
    make_merchant, names, settings
):
    settings.WEBHOOK_RESOLVE_TIMEOUT_SECONDS = 0.2
    _, slow = names
    live = make_merchant(mode=Mode.LIVE)
    webhook_endpoint_create(app=live.app, url="https://hooks.example.com/cashback")
    slow.add("hooks.example.com")
    started = time.monotonic()
    delivery = _attempt(live.app)
    assert time.monotonic() - started < 1.5
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_error == "Refused: The host hooks.example.com does not resolve in time."


def test_a_url_stored_before_it_had_to_be_ascii_is_refused_at_delivery(merchant, receiver):
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"{receiver.url}/café")
    delivery = _attempt(merchant.app)
    # An attempt like any failed one: counted, its backoff set, the endpoint's failures counted.
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error.startswith("Refused: The URL must be ASCII")
    assert delivery.next_attempt_at is not None
    assert not receiver.received


def test_a_fault_while_sending_is_a_failed_attempt_not_a_delivery_taken_again_at_once(
    merchant, receiver, monkeypatch
):
    from webhooks import services

    def broken(*args, **kwargs):
        raise RuntimeError("something of ours broke")

    monkeypatch.setattr(services, "webhook_post", broken)
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    delivery = _attempt(merchant.app)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error == "Not sent: RuntimeError: something of ours broke"
    assert delivery.next_attempt_at is not None
    endpoint.refresh_from_db()
    assert endpoint.failures == 1


def test_no_lookup_thread_free_is_no_failure_of_the_endpoint(merchant, names, monkeypatch):
    table, _ = names

    def busy(*args):
        raise destinations.ResolverBusy()

    endpoint = webhook_endpoint_create(app=merchant.app, url="http://hooks.example.com/hook")
    monkeypatch.setattr(destinations, "_resolve_in_time", busy)
    delivery = _attempt(merchant.app)
    # Nothing was tried: no attempt counted, the endpoint not failed; it waits a second.
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.PENDING,
        0,
        "",
    )
    endpoint.refresh_from_db()
    assert endpoint.failures == 0
    # Registering answers 503, to be retried.
    response = merchant.client.post(WEBHOOKS, {"url": "http://hooks.example.com/other"})
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "service_unavailable"

"""An endpoint that fails rests between attempts, so that a receiver that stalls costs the worker
one attempt per rest rather than one per event; one that failed every attempt for
`CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS` is disabled, and the app's other endpoints are told."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    REST_AFTER_FAILURES,
    event_record,
    webhook_delivery_attempt_next,
    webhook_endpoint_create,
)


@pytest.fixture
def quick_backoff(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.WEBHOOK_RETRY_MAX_SECONDS = 600


def _events(app, n: int) -> None:
    for i in range(n):
        event_record(app_id=app.pk, event_type="cashback.earned", data={"n": i})


@pytest.mark.usefixtures("quick_backoff")
def test_after_failures_in_a_row_the_endpoint_rests_and_its_deliveries_wait_without_a_post(
    merchant, make_receiver
):
    receiver = make_receiver(answers=[500, 500, 500])
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    _events(merchant.app, 5)

    before = timezone.now()
    # A failure now and then does not stop the others: the endpoint keeps its pace.
    for failures in (1, 2):
        failed = webhook_delivery_attempt_next(app_id=merchant.app.pk)
        assert failed is not None
        assert failed.last_status_code == 500
        endpoint.refresh_from_db()
        assert (endpoint.failures, endpoint.paused_until) == (failures, None)
    # The third in a row: it rests.
    failed = webhook_delivery_attempt_next(app_id=merchant.app.pk)
    assert failed is not None
    assert failed.last_attempt_at is not None
    endpoint.refresh_from_db()
    assert endpoint.failures == REST_AFTER_FAILURES == 3
    assert endpoint.failing_since is not None
    assert endpoint.failing_since >= before
    assert endpoint.paused_until == failed.last_attempt_at + timedelta(seconds=30)

    # The two others are due, and wait for the endpoint, both at once: no POST, no attempt
    # counted.
    waited = webhook_delivery_attempt_next(app_id=merchant.app.pk)
    assert waited is not None
    assert webhook_delivery_attempt_next(app_id=merchant.app.pk) is None
    others = WebhookDelivery.objects.exclude(attempts__gt=0)
    assert {(d.attempts, d.next_attempt_at) for d in others} == {(0, endpoint.paused_until)}
    assert others.count() == 2
    assert len(receiver.received) == 3

    # Rested, it is tried again; a 2xx ends its failures.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(paused_until=timezone.now())
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    delivered = webhook_delivery_attempt_next(app_id=merchant.app.pk)
    assert delivered is not None
    assert delivered.status == DeliveryStatus.DELIVERED
    endpoint.refresh_from_db()
    assert (endpoint.failures, endpoint.failing_since, endpoint.paused_until) == (0, None, None)


@pytest.mark.usefixtures("quick_backoff")
def test_each_further_failure_in_a_row_rests_the_endpoint_longer(merchant, make_receiver):
    receiver = make_receiver(answers=[500, 500, 500])
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failures=REST_AFTER_FAILURES - 1, failing_since=timezone.now()
    )
    rests = []
    for _ in range(3):
        _events(merchant.app, 1)
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(paused_until=None)
        attempted = webhook_delivery_attempt_next(app_id=merchant.app.pk)
        assert attempted is not None
        endpoint.refresh_from_db()
        assert endpoint.paused_until is not None
        assert attempted.last_attempt_at is not None
        rests.append(round((endpoint.paused_until - attempted.last_attempt_at).total_seconds()))
    assert rests == [30, 60, 120]


def test_an_endpoint_failing_every_attempt_for_the_disable_hours_is_disabled(
    merchant, make_receiver, settings, admin_client
):
    settings.CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS = 72
    failing = make_receiver(answers=[503, 503])
    healthy = make_receiver()
    stalled = webhook_endpoint_create(app=merchant.app, url=failing.url)
    told = webhook_endpoint_create(app=merchant.app, url=healthy.url)
    _events(merchant.app, 2)
    WebhookEndpoint.objects.filter(pk=told.pk).update(paused_until=timezone.now())

    # Failing for a little under 72 hours: it rests, and stays enabled.
    WebhookEndpoint.objects.filter(pk=stalled.pk).update(
        failures=40, failing_since=timezone.now() - timedelta(hours=71, minutes=59)
    )
    WebhookDelivery.objects.filter(endpoint=told).update(status=DeliveryStatus.DELIVERED)
    assert webhook_delivery_attempt_next(app_id=merchant.app.pk) is not None
    stalled.refresh_from_db()
    assert stalled.enabled

    # Past 72 hours, the next failure disables it.
    WebhookEndpoint.objects.filter(pk=stalled.pk).update(
        paused_until=None, failing_since=timezone.now() - timedelta(hours=72, minutes=1)
    )
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert webhook_delivery_attempt_next(app_id=merchant.app.pk) is not None
    stalled.refresh_from_db()
    assert not stalled.enabled
    assert stalled.disabled_at is not None
    assert "every attempt failed for 72 hours" in stalled.disabled_reason
    assert "HTTP 503" in stalled.disabled_reason

    # The app's other endpoint is told, and nothing more is sent to the disabled one.
    [notice] = WebhookDelivery.objects.filter(
        endpoint=told, event__event_type=EventType.ENDPOINT_DISABLED
    )
    body = json.loads(notice.event.body)
    assert body["data"]["endpoint_id"] == stalled.pk
    assert body["data"]["url"] == failing.url
    assert body["data"]["reason"] == stalled.disabled_reason
    assert not WebhookDelivery.objects.filter(
        endpoint=stalled, event__event_type=EventType.ENDPOINT_DISABLED
    ).exists()
    _events(merchant.app, 1)
    assert WebhookDelivery.objects.filter(endpoint=stalled).count() == 2
    # The delivery that failed last is failed for good, and what was still pending for the
    # endpoint is failed without a POST.
    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now()
    )
    while webhook_delivery_attempt_next(app_id=merchant.app.pk) is not None:
        pass
    assert sorted(
        WebhookDelivery.objects.filter(endpoint=stalled).values_list("status", "last_error")
    ) == [
        (DeliveryStatus.FAILED, "HTTP 503"),
        (DeliveryStatus.FAILED, "The endpoint was disabled."),
    ]
    assert len(failing.received) == 2
    assert len(healthy.received) == 2  # the notice and the last event

    # Staff see why in the back office.
    page = admin_client.get(f"/admin/webhooks/webhookendpoint/{stalled.pk}/change/")
    assert "every attempt failed for 72 hours" in page.content.decode()


def test_a_failure_after_a_quiet_spell_starts_a_new_streak(merchant, make_receiver, settings):
    """Failing for days, then nothing to send for longer than any wait between attempts: the
    next failure does not disable the endpoint, it starts counting again."""
    settings.CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS = 72
    receiver = make_receiver(answers=[503])
    endpoint = webhook_endpoint_create(app=merchant.app, url=receiver.url)
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failures=50,
        failing_since=now - timedelta(hours=73),
        last_failed_at=now - timedelta(hours=48),
    )
    _events(merchant.app, 1)
    assert webhook_delivery_attempt_next(app_id=merchant.app.pk) is not None
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert endpoint.failures == 1
    assert endpoint.failing_since is not None
    assert endpoint.failing_since >= now


def test_a_disabled_endpoint_says_so_and_staff_enable_it_again(api, merchant, admin_client):
    endpoint = webhook_endpoint_create(app=merchant.app, url="http://127.0.0.1:9/hook")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False,
        disabled_at=timezone.now(),
        disabled_reason="Disabled by the worker.",
        failures=9,
        failing_since=timezone.now(),
    )
    [listed] = api.get("/api/v1/cashback/webhooks").json()["data"]["webhooks"]
    assert (listed["id"], listed["enabled"]) == (endpoint.pk, False)
    response = admin_client.post(
        "/admin/webhooks/webhookendpoint/", {"action": "enable", "_selected_action": [endpoint.pk]}
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.failures) == (True, "", 0)
    _events(merchant.app, 1)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1

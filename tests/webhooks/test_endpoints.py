"""Webhook endpoints by API (scope `webhooks`) and by command: registered with a secret shown
once, listed without it, deleted, their secret rotated with a day's overlap."""

import base64
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps_auth.models import IdempotencyRecord
from tests.helpers import concurrently, error
from webhooks import destinations
from webhooks.models import EventType, WebhookEndpoint

WEBHOOKS = "/api/v1/cashback/webhooks"
HOOK = "http://127.0.0.1:9000/cashback"


@pytest.fixture(autouse=True)
def public_names(monkeypatch):
    """hooks.example.com is a public host; an address resolves to itself."""
    real = destinations.resolve
    monkeypatch.setattr(
        destinations,
        "resolve",
        lambda host, port: ["93.184.216.34"] if host == "hooks.example.com" else real(host, port),
    )


def secret_bytes(secret: str) -> bytes:
    assert secret.startswith("whsec_")
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


def test_an_endpoint_is_registered_with_a_secret_shown_once(api):
    response = api.post(WEBHOOKS, {"url": HOOK, "events": ["cashback.earned"]})
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["url"] == HOOK
    assert data["events"] == ["cashback.earned"]
    assert len(secret_bytes(data["secret"])) == 32
    assert set(data) == {"id", "url", "events", "secret", "created_at", "enabled"}

    listed = api.get(WEBHOOKS).json()["data"]
    assert listed["total"] == 1
    [item] = listed["webhooks"]
    assert item == {k: v for k, v in data.items() if k != "secret"}
    assert data["secret"] not in api.get(WEBHOOKS).content.decode()


def test_no_events_means_every_event(api):
    data = api.post(WEBHOOKS, {"url": HOOK}).json()["data"]
    assert data["events"] == list(EventType.values)


def test_a_live_app_registers_public_https_only(make_merchant):
    live = make_merchant(mode="live")
    for url in (HOOK, "https://127.0.0.1/hook", "http://hooks.example.com/hook"):
        refused = live.client.post(WEBHOOKS, {"url": url})
        assert refused.status_code == 400, url
        assert refused.json()["error"]["code"] == "validation_error"
        assert set(refused.json()["error"]["details"]) == {"url"}
    assert not WebhookEndpoint.objects.exists()
    assert live.client.post(WEBHOOKS, {"url": "https://hooks.example.com/hook"}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"url": HOOK, "events": ["cashback.stolen"]},
        {"url": HOOK, "events": "cashback.earned"},
        {"url": ""},
        {"url": HOOK, "secret": "whsec_mine"},
        {},
    ],
)
def test_a_bad_registration_is_400_and_registers_nothing(api, body):
    response = api.post(WEBHOOKS, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not WebhookEndpoint.objects.exists()


def test_webhooks_need_their_scope(make_merchant):
    shop = make_merchant(scopes=["cashback_read", "cashback_write", "card_read"])
    assert shop.client.get(WEBHOOKS).status_code == 403
    assert shop.client.post(WEBHOOKS, {"url": HOOK}).status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_a_deleted_endpoint_is_gone_for_the_app_and_kept_for_the_record(api):
    endpoint_id = api.post(WEBHOOKS, {"url": HOOK}).json()["data"]["id"]
    deleted = api.delete(f"{WEBHOOKS}/{endpoint_id}")
    assert deleted.status_code == 200
    assert deleted.json()["data"] == {"id": endpoint_id, "deleted": True}
    assert api.get(WEBHOOKS).json()["data"] == {"webhooks": [], "total": 0}
    assert api.delete(f"{WEBHOOKS}/{endpoint_id}").status_code == 404
    assert WebhookEndpoint.objects.get(pk=endpoint_id).deleted_at is not None


def test_another_apps_endpoint_is_404(api, other_merchant):
    endpoint_id = other_merchant.client.post(WEBHOOKS, {"url": HOOK}).json()["data"]["id"]
    assert api.delete(f"{WEBHOOKS}/{endpoint_id}").status_code == 404
    assert api.post(f"{WEBHOOKS}/{endpoint_id}/rotate-secret").json() == error("not_found")
    assert api.delete(f"{WEBHOOKS}/{10**30}").status_code == 404
    assert WebhookEndpoint.objects.get(pk=endpoint_id).deleted_at is None


def test_a_rotated_secret_keeps_the_old_one_signing_for_a_day(api):
    created = api.post(WEBHOOKS, {"url": HOOK}).json()["data"]
    rotated = api.post(f"{WEBHOOKS}/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    data = rotated.json()["data"]
    assert data["id"] == created["id"]
    assert len(secret_bytes(data["secret"])) == 32
    assert data["secret"] != created["secret"]
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert (endpoint.secret, endpoint.previous_secret) == (data["secret"], created["secret"])
    assert endpoint.previous_secret_expires_at is not None
    overlap = endpoint.previous_secret_expires_at - timezone.now()
    assert timedelta(hours=23, minutes=59) < overlap <= timedelta(hours=24)


def test_a_replayed_registration_answers_the_same_secret_without_keeping_a_copy(api):
    headers = {"Idempotency-Key": "hook-1"}
    first = api.post(WEBHOOKS, {"url": HOOK}, headers=headers)
    again = api.post(WEBHOOKS, {"url": HOOK}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert WebhookEndpoint.objects.count() == 1
    secret = first.json()["data"]["secret"]
    assert secret not in IdempotencyRecord.objects.get(key="hook-1").response_body


def test_create_webhook_endpoint_prints_the_endpoint_and_its_secret(merchant):
    out = StringIO()
    call_command(
        "create_webhook_endpoint",
        "--app",
        merchant.app.app_id,
        "--url",
        HOOK,
        "--events",
        "cashback.earned,cashback.redeemed",
        "--json",
        stdout=out,
    )
    result = json.loads(out.getvalue())
    assert set(result) == {"id", "url", "events", "secret"}
    assert result["events"] == ["cashback.earned", "cashback.redeemed"]
    assert WebhookEndpoint.objects.get(pk=result["id"]).secret == result["secret"]


def test_an_app_holds_at_most_the_endpoints_per_app_and_one_more_is_422(api, merchant, settings):
    settings.CASHBACK_WEBHOOK_ENDPOINTS_PER_APP = 3
    ids = [api.post(WEBHOOKS, {"url": f"{HOOK}/{n}"}).json()["data"]["id"] for n in range(3)]
    response = api.post(WEBHOOKS, {"url": f"{HOOK}/3"})
    assert response.status_code == 422
    assert response.json() == error(
        "endpoint_limit_reached",
        "The app has as many enabled webhook endpoints as it may; delete or disable one first.",
        details={"limit": 3},
    )
    assert WebhookEndpoint.objects.filter(app=merchant.app).count() == 3
    # A deleted endpoint, or a disabled one, leaves room for another.
    assert api.delete(f"{WEBHOOKS}/{ids[0]}").status_code == 200
    assert api.post(WEBHOOKS, {"url": f"{HOOK}/4"}).status_code == 200
    WebhookEndpoint.objects.filter(pk=ids[1]).update(enabled=False)
    assert api.post(WEBHOOKS, {"url": f"{HOOK}/5"}).status_code == 200
    assert api.post(WEBHOOKS, {"url": f"{HOOK}/6"}).status_code == 422


def test_the_endpoint_limit_is_one_app_s_not_every_app_s(api, other_merchant, settings):
    settings.CASHBACK_WEBHOOK_ENDPOINTS_PER_APP = 1
    assert other_merchant.client.post(WEBHOOKS, {"url": HOOK}).status_code == 200
    assert api.post(WEBHOOKS, {"url": HOOK}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_never_pass_the_endpoint_limit(merchant, settings):
    settings.CASHBACK_WEBHOOK_ENDPOINTS_PER_APP = 4
    answers = concurrently(
        12, lambda n: merchant.client.post(WEBHOOKS, {"url": f"{HOOK}/{n}"}).status_code
    )
    assert sorted(answers) == [200] * 4 + [422] * 8
    assert WebhookEndpoint.objects.filter(app=merchant.app).count() == 4

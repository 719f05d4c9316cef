"""The back office shows every app's webhook endpoints, never their secrets, and can stop one;
it lists every delivery and can send one again."""

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    event_record,
    webhook_delivery_attempt,
    webhook_delivery_attempt_next,
    webhook_endpoint_create,
)

URL = "http://127.0.0.1:9000/cashback"


def test_staff_see_endpoints_without_their_secrets(admin_client, merchant):
    endpoint = webhook_endpoint_create(app=merchant.app, url=URL, events=["cashback.earned"])
    listing = admin_client.get("/admin/webhooks/webhookendpoint/")
    page = admin_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    for response in (listing, page):
        assert response.status_code == 200
        html = response.content.decode()
        assert URL in html
        assert "cashback.earned" in html
        assert endpoint.secret not in html
        assert endpoint.secret.removeprefix("whsec_")[:12] not in html


def test_staff_stop_deliveries_to_an_endpoint(admin_client, merchant):
    endpoint = webhook_endpoint_create(app=merchant.app, url=URL)
    response = admin_client.post(
        "/admin/webhooks/webhookendpoint/",
        {"action": "stop_deliveries", "_selected_action": [endpoint.pk]},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.deleted_at is not None
    assert WebhookEndpoint.objects.count() == 1


DELIVERIES = "/admin/webhooks/webhookdelivery/"


def _delivered_once(merchant, receiver) -> WebhookDelivery:
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={"amount": 1})
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    return delivery


def test_staff_see_deliveries_with_status_attempts_answer_and_next_try(
    admin_client, merchant, make_receiver
):
    receiver = make_receiver(answers=[502])
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={"amount": 1})
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_attempt(delivery_id=delivery.pk)

    listing = admin_client.get(DELIVERIES)
    assert listing.status_code == 200
    html = listing.content.decode()
    for shown in ("cashback.earned", receiver.url, merchant.app.app_id, "Pending", "502"):
        assert shown in html, shown
    assert admin_client.get(DELIVERIES, {"status__exact": "pending"}).status_code == 200
    filtered = admin_client.get(DELIVERIES, {"status__exact": "delivered"}).content.decode()
    assert receiver.url not in filtered
    by_type = admin_client.get(DELIVERIES, {"event__event_type": "cashback.redeemed"})
    assert receiver.url not in by_type.content.decode()

    page = admin_client.get(f"{DELIVERIES}{delivery.pk}/change/")
    assert page.status_code == 200
    assert delivery.event.public_id in page.content.decode()
    assert "HTTP 502" in page.content.decode()
    # Read-only: nothing to save, add or delete.
    assert admin_client.post(f"{DELIVERIES}{delivery.pk}/change/", {}).status_code == 403
    assert admin_client.get(f"{DELIVERIES}add/").status_code == 403


def test_staff_resend_a_delivered_delivery_with_the_same_webhook_id(
    admin_client, merchant, receiver
):
    delivery = _delivered_once(merchant, receiver)
    response = admin_client.post(
        DELIVERIES, {"action": "resend", "_selected_action": [delivery.pk]}
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at <= timezone.now()  # due: the worker takes it next

    assert webhook_delivery_attempt_next(app_id=merchant.app.pk) == delivery
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    first, again = receiver.received
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == delivery.event.public_id
    assert first.body == again.body


def test_staff_without_the_change_permission_cannot_resend(client, merchant, receiver):
    delivery = _delivered_once(merchant, receiver)
    viewer = User.objects.create_user("viewer", password="x-viewer-password", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(viewer)
    assert client.get(DELIVERIES).status_code == 200
    client.post(DELIVERIES, {"action": "resend", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED

"""The back office shows every app's webhook endpoints, never their secrets, and can stop one."""

from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_endpoint_create

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

"""Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` and `webhook-signature`
(`v1,<base64 HMAC-SHA256>` of `id.timestamp.body`), made by the `standardwebhooks` library so
that a receiver using it verifies them."""

from datetime import datetime

from standardwebhooks import Webhook

from webhooks.models import WebhookEndpoint


def webhook_signing_secrets(endpoint: WebhookEndpoint, *, at: datetime) -> list[str]:
    """The secrets that sign at `at`: the endpoint's, and after a rotation the previous one
    until its overlap ends."""
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > at:
        secrets.append(endpoint.previous_secret)
    return secrets


def webhook_headers(
    *, endpoint: WebhookEndpoint, event_id: str, body: str, at: datetime
) -> dict[str, str]:
    """The headers of one POST of `body`: one signature per secret in force, space-separated."""
    signatures = [
        Webhook(secret).sign(msg_id=event_id, timestamp=at, data=body)
        for secret in webhook_signing_secrets(endpoint, at=at)
    ]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }

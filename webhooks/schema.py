"""The OpenAPI declarations of the webhooks API's operations (drf-spectacular): each a
decorator its view method wears, so that a view says what it does and this module what
it declares."""

from drf_spectacular.utils import extend_schema

from apps_auth.idempotency import IDEMPOTENCY_KEY
from core.api.schema import documented, path_id
from core.api.serializers import envelope, error_responses, examples
from core.errors import NotFound
from webhooks.errors import EndpointLimitReached
from webhooks.serializers import (
    WebhookEndpointCreatedSerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointDeletedSerializer,
    WebhookEndpointListSerializer,
    WebhookSecretSerializer,
)

WEBHOOK_ID = path_id("id", "The endpoint's id.")


WEBHOOK_NOT_FOUND = documented(NotFound, "The app has no webhook endpoint with this id.")


ENDPOINT_LIST = extend_schema(
    summary="List webhook endpoints",
    operation_id="list_webhooks",
    description="The app's endpoints, newest first, without their secrets.",
    responses={200: envelope(WebhookEndpointListSerializer), **error_responses()},
    examples=examples(
        response={
            "webhooks": [
                {
                    "id": 3,
                    "url": "https://shop.example.com/hooks/cashback",
                    "events": ["cashback.earned", "cashback.redeemed"],
                    "created_at": "2025-01-15T09:00:00Z",
                    "enabled": True,
                }
            ],
            "total": 1,
        }
    ),
)

ENDPOINT_CREATE = extend_schema(
    summary="Register a webhook endpoint",
    operation_id="create_webhook",
    description="Events are POSTed to the URL as JSON, signed as the Standard Webhooks "
    "specification says with the secret answered here (and only here). Deliveries are "
    "retried with backoff for at least 24 hours until the URL answers 2xx within 5 "
    "seconds; dedupe them by their webhook-id header. An app holds at most 16 enabled "
    "endpoints; one that fails every attempt for 72 hours is disabled.",
    parameters=[IDEMPOTENCY_KEY],
    request=WebhookEndpointCreateSerializer,
    responses={
        200: envelope(WebhookEndpointCreatedSerializer),
        **error_responses(
            documented(
                EndpointLimitReached,
                "The app holds as many enabled endpoints as it may "
                "(CASHBACK_WEBHOOK_ENDPOINTS_PER_APP, 16 by default); delete one first.",
            )
        ),
    },
    examples=examples(
        request={
            "url": "https://shop.example.com/hooks/cashback",
            "events": ["cashback.earned", "cashback.redeemed"],
        },
        response={
            "id": 3,
            "url": "https://shop.example.com/hooks/cashback",
            "events": ["cashback.earned", "cashback.redeemed"],
            "created_at": "2025-01-15T09:00:00Z",
            "enabled": True,
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    ),
)

ENDPOINT_DELETE = extend_schema(
    summary="Delete a webhook endpoint",
    operation_id="delete_webhook",
    description="Nothing more is delivered to it.",
    parameters=[WEBHOOK_ID],
    responses={
        200: envelope(WebhookEndpointDeletedSerializer),
        **error_responses(WEBHOOK_NOT_FOUND),
    },
    examples=examples(response={"id": 3, "deleted": True}),
)

ENDPOINT_ROTATE_SECRET = extend_schema(
    summary="Rotate a webhook endpoint's secret",
    operation_id="rotate_webhook_secret",
    description="Answers a new secret; the previous one keeps signing beside it for 24 "
    "hours, so that the receiver can switch without missing an event.",
    parameters=[IDEMPOTENCY_KEY, WEBHOOK_ID],
    request=None,
    responses={
        200: envelope(WebhookSecretSerializer),
        **error_responses(WEBHOOK_NOT_FOUND),
    },
    examples=examples(
        response={
            "id": 3,
            "secret": "whsec_2xVbq0mN7cJr4TzLwYH5sKdE8uAoP1fG",
            "previous_secret_expires_at": "2025-01-16T09:00:00Z",
        }
    ),
)

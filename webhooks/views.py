from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps_auth.idempotency import IDEMPOTENCY_KEY, Withheld, idempotent
from apps_auth.permissions import HasWebhooks
from core.api.responses import ok
from core.api.schema import documented, path_id
from core.api.serializers import NoQuerySerializer, envelope, error_responses, examples, validated
from core.errors import NotFound
from webhooks.errors import EndpointLimitReached
from webhooks.models import WebhookEndpoint
from webhooks.selectors import webhook_endpoint_get, webhook_endpoint_list
from webhooks.serializers import (
    WebhookEndpointCreatedSerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointDeletedSerializer,
    WebhookEndpointListSerializer,
    WebhookSecretSerializer,
)
from webhooks.services import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
)


def _secret_withhold(data: dict) -> dict:
    return {**data, "secret": None}


def _secret_restore(data: dict) -> dict:
    """The endpoint's secret in force, read again: a secret is kept in one place only."""
    secret = WebhookEndpoint.objects.values_list("secret", flat=True).get(pk=data["id"])
    return {**data, "secret": secret}


WEBHOOK_ID = path_id("id", "The endpoint's id.")
WEBHOOK_NOT_FOUND = documented(NotFound, "The app has no webhook endpoint with this id.")

# A replayed registration or rotation answers the secret without a copy in the kept answer.
SECRET_WITHHELD = Withheld(keep=_secret_withhold, restore=_secret_restore)


@extend_schema(tags=["Webhooks"])
class WebhookViewSet(viewsets.ViewSet):
    """The app's webhook endpoints (scope `webhooks`)."""

    permission_classes = [HasWebhooks]
    lookup_value_regex = r"[0-9]+"

    @extend_schema(
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
    def list(self, request):
        validated(NoQuerySerializer, request.query_params)
        endpoints = list(webhook_endpoint_list(app=request.auth))
        return ok(
            WebhookEndpointListSerializer({"webhooks": endpoints, "total": len(endpoints)}).data
        )

    @extend_schema(
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
    @idempotent(input=WebhookEndpointCreateSerializer, withheld=SECRET_WITHHELD)
    def create(self, request, params: WebhookEndpointCreateSerializer):
        data = params.validated_data
        endpoint = webhook_endpoint_create(
            app=request.auth, url=data["url"], events=data.get("events")
        )
        return ok(WebhookEndpointCreatedSerializer(endpoint).data)

    @extend_schema(
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
    def destroy(self, request, pk: str):
        endpoint = webhook_endpoint_get(app=request.auth, endpoint_id=int(pk))
        webhook_endpoint_delete(endpoint=endpoint)
        return ok(WebhookEndpointDeletedSerializer({"id": endpoint.pk, "deleted": True}).data)

    @extend_schema(
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
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    @idempotent(withheld=SECRET_WITHHELD)
    def rotate_secret(self, request, pk: str):
        endpoint = webhook_endpoint_get(app=request.auth, endpoint_id=int(pk))
        rotated = webhook_endpoint_rotate_secret(endpoint=endpoint)
        return ok(WebhookSecretSerializer(rotated).data)

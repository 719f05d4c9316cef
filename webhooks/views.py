from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from apps_auth.idempotency import Withheld, idempotent
from apps_auth.permissions import HasWebhooks
from core.api.responses import ok
from core.api.serializers import NoQuerySerializer, validated
from webhooks.models import WebhookEndpoint
from webhooks.schema import ENDPOINT_CREATE, ENDPOINT_DELETE, ENDPOINT_LIST, ENDPOINT_ROTATE_SECRET
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


# A replayed registration or rotation answers the secret without a copy in the kept answer.
SECRET_WITHHELD = Withheld(keep=_secret_withhold, restore=_secret_restore)


@extend_schema(tags=["Webhooks"])
class WebhookViewSet(viewsets.ViewSet):
    """The app's webhook endpoints (scope `webhooks`)."""

    permission_classes = [HasWebhooks]
    lookup_value_regex = r"[0-9]+"

    @ENDPOINT_LIST
    def list(self, request):
        validated(NoQuerySerializer, request.query_params)
        endpoints = list(webhook_endpoint_list(app=request.auth))
        return ok(
            WebhookEndpointListSerializer({"webhooks": endpoints, "total": len(endpoints)}).data
        )

    @ENDPOINT_CREATE
    @idempotent(input=WebhookEndpointCreateSerializer, withheld=SECRET_WITHHELD)
    def create(self, request, params: WebhookEndpointCreateSerializer):
        data = params.validated_data
        endpoint = webhook_endpoint_create(
            app=request.auth, url=data["url"], events=data.get("events")
        )
        return ok(WebhookEndpointCreatedSerializer(endpoint).data)

    @ENDPOINT_DELETE
    def destroy(self, request, pk: str):
        endpoint = webhook_endpoint_get(app=request.auth, endpoint_id=int(pk))
        webhook_endpoint_delete(endpoint=endpoint)
        return ok(WebhookEndpointDeletedSerializer({"id": endpoint.pk, "deleted": True}).data)

    @ENDPOINT_ROTATE_SECRET
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    @idempotent(withheld=SECRET_WITHHELD)
    def rotate_secret(self, request, pk: str):
        endpoint = webhook_endpoint_get(app=request.auth, endpoint_id=int(pk))
        rotated = webhook_endpoint_rotate_secret(endpoint=endpoint)
        return ok(WebhookSecretSerializer(rotated).data)

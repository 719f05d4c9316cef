from rest_framework import serializers

from core.api.serializers import StrictSerializer
from webhooks.models import EventType
from webhooks.selectors import webhook_endpoint_events

# Input


class WebhookEndpointCreateSerializer(StrictSerializer):
    url = serializers.CharField(
        max_length=2048,
        help_text="Where events are POSTed. Live mode: https, on a public address; test mode "
        "may also use http and loopback (http://127.0.0.1:8080/hook).",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        required=False,
        max_length=len(EventType.values),
        help_text="The events to receive; none: every event.",
    )


# Output


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    enabled = serializers.BooleanField(
        help_text="False once the worker disabled it (every attempt failed for 72 hours): "
        "nothing is sent to it until it is enabled again."
    )

    def get_events(self, endpoint) -> list[str]:
        return webhook_endpoint_events(endpoint)


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        help_text="Signs every delivery (Standard Webhooks, whsec_…). Shown only here."
    )


class WebhookEndpointListSerializer(serializers.Serializer):
    webhooks = WebhookEndpointSerializer(many=True)
    total = serializers.IntegerField()


class WebhookSecretSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    secret = serializers.CharField(help_text="The new secret. Shown only here.")
    previous_secret_expires_at = serializers.DateTimeField(
        help_text="Until then the previous secret signs beside the new one."
    )


class WebhookEndpointDeletedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    deleted = serializers.BooleanField()

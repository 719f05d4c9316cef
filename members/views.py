from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from config.api.authentication import token_member, token_member_id
from config.api.idempotency import IDEMPOTENCY_KEY, idempotent
from config.api.permissions import HasCashbackWrite
from config.api.responses import ok
from config.api.schema import MEMBER_CREDENTIALS
from config.api.serializers import envelope, error_responses, validated
from members.serializers import PinResultSerializer, PinSerializer
from members.services import member_pin_change


@extend_schema(tags=["Members"])
class MemberViewSet(viewsets.ViewSet):
    @extend_schema(
        summary="Set or change the member's PIN",
        description="The member is the one of X-Member-Token. Changing a PIN in force needs "
        "current_pin; 5 wrong ones in a row lock the PIN for 15 minutes.",
        auth=[MEMBER_CREDENTIALS],
        parameters=[IDEMPOTENCY_KEY],
        request=PinSerializer,
        responses={
            200: envelope(PinResultSerializer),
            **error_responses(400, 401, 403, 404, 409, 423, 429),
        },
    )
    @action(detail=False, methods=["post"], permission_classes=[HasCashbackWrite])
    @idempotent(subject=token_member_id)
    def pin(self, request):
        member = token_member(request)
        params = validated(PinSerializer, request.data)
        member_pin_change(
            member=member,
            pin=params.validated_data["pin"],
            current_pin=params.validated_data.get("current_pin"),
        )
        data = {"member_id": member.pk, "pin_set": True, "changed_at": timezone.now()}
        return ok(PinResultSerializer(data).data)

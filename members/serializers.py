from rest_framework import serializers

from config.api.fields import IdField, LowercaseEmailField, PhoneField, PinField
from config.api.serializers import StrictSerializer
from members.services import MemberRef


class MemberRefSerializer(serializers.Serializer):
    """A member named by `member_id`, else `email`, else `phone`."""

    member_id = IdField(required=False, help_text="The member; or give email or phone.")
    email = LowercaseEmailField(required=False, help_text="The member's email (case-insensitive).")
    phone = PhoneField(required=False, help_text="The member's phone; stored in E.164.")

    def validate(self, attrs):
        if not any(attrs.get(name) for name in ("member_id", "email", "phone")):
            raise serializers.ValidationError({"member_id": ["Give member_id, email or phone."]})
        return attrs

    def member_ref(self) -> MemberRef:
        data = self.validated_data
        return MemberRef(
            member_id=data.get("member_id"),
            email=data.get("email"),
            phone=data.get("phone"),
            name=data.get("member_name", ""),
        )


class PinSerializer(StrictSerializer):
    pin = PinField(help_text="The new PIN: 4 to 6 digits, as a string.")
    current_pin = PinField(required=False, help_text="The PIN in force, when one is set.")


class PinResultSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    pin_set = serializers.BooleanField()
    changed_at = serializers.DateTimeField()

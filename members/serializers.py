from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers

from core.api.fields import IdField
from core.api.serializers import StrictSerializer
from members.models import OtpChannel
from members.services import MemberRef

# Fields


class PhoneField(PhoneNumberField):
    """A phone number, read in E.164; without a country code the default region applies."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        return super().to_internal_value(data).as_e164


class LowercaseEmailField(serializers.EmailField):
    """An email address, lower-cased: members' emails are unique per app case-insensitively."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)  # the column's length (RFC 5321's path limit)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data).lower()


class PinField(serializers.RegexField):
    """A PIN: a string of 4 to 6 digits. A JSON number is refused: it would lose leading zeros."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "4 to 6 digits, as a string.")
        super().__init__(r"^[0-9]{4,6}$", **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# Input


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


class MemberLookupSerializer(StrictSerializer):
    """The query of the member lookup: an email or a phone, one of them."""

    email = LowercaseEmailField(required=False, help_text="The member's email (any case).")
    phone = PhoneField(
        required=False,
        help_text="The member's phone, in E.164 (URL-encode the + as %2B) or in the national "
        "format of the default region.",
    )

    def validate(self, attrs):
        if len(attrs) != 1:
            raise serializers.ValidationError({"email": ["Give email or phone (one of them)."]})
        return attrs

    def member_ref(self) -> MemberRef:
        return MemberRef(**self.validated_data)


class PinSerializer(StrictSerializer):
    pin = PinField(help_text="The new PIN: 4 to 6 digits, as a string.")
    current_pin = PinField(required=False, help_text="The PIN in force, when one is set.")


class OtpRequestSerializer(MemberRefSerializer, StrictSerializer):
    channel = serializers.ChoiceField(
        choices=OtpChannel.choices,
        required=False,
        help_text="email or sms; by default email when the member has one.",
    )


class OtpVerifySerializer(StrictSerializer):
    challenge_id = serializers.CharField(max_length=40)
    code = serializers.RegexField(r"^[0-9]{6}$", help_text="The 6-digit code, as a string.")

    def validate_code(self, value):
        if not isinstance(self.initial_data.get("code"), str):
            raise serializers.ValidationError("Send the code as a string of 6 digits.")
        return value


# Output


class MemberSerializer(serializers.Serializer):
    member_id = serializers.IntegerField(source="pk")
    email = serializers.EmailField(allow_null=True)
    phone = serializers.CharField(allow_null=True, help_text="E.164")
    name = serializers.CharField()
    created_at = serializers.DateTimeField()


class PinResultSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    pin_set = serializers.BooleanField()
    changed_at = serializers.DateTimeField()


class OtpChallengeSerializer(serializers.Serializer):
    challenge_id = serializers.CharField()
    channel = serializers.ChoiceField(choices=OtpChannel.choices)
    destination = serializers.CharField(source="destination_masked")
    expires_at = serializers.DateTimeField()
    test_code = serializers.CharField(
        required=False,
        help_text="Test-mode apps only (never live ones): the code itself, which is not sent.",
    )


class MemberTokenSerializer(serializers.Serializer):
    member_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_at = serializers.DateTimeField()
    member_id = serializers.IntegerField()

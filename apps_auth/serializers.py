from rest_framework import serializers

from apps_auth.models import OtpChannel
from config.api.serializers import StrictSerializer
from members.serializers import MemberRefSerializer


class OtpRequestSerializer(MemberRefSerializer, StrictSerializer):
    channel = serializers.ChoiceField(
        choices=OtpChannel.choices,
        required=False,
        help_text="email or sms; by default email when the member has one.",
    )


class OtpChallengeSerializer(serializers.Serializer):
    challenge_id = serializers.CharField()
    channel = serializers.ChoiceField(choices=OtpChannel.choices)
    destination = serializers.CharField(source="destination_masked")
    expires_at = serializers.DateTimeField()


class OtpVerifySerializer(StrictSerializer):
    challenge_id = serializers.CharField(max_length=40)
    code = serializers.RegexField(r"^[0-9]{6}$", help_text="The 6-digit code, as a string.")

    def validate_code(self, value):
        if not isinstance(self.initial_data.get("code"), str):
            raise serializers.ValidationError("Send the code as a string of 6 digits.")
        return value


class MemberTokenSerializer(serializers.Serializer):
    member_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_at = serializers.DateTimeField()
    member_id = serializers.IntegerField()

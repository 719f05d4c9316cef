import phonenumbers
from django.conf import settings


def normalize_phone(value: str) -> str:
    """The number in E.164, read with the default region when it has no country code.

    Raises `ValueError` when it is not a valid number.
    """
    try:
        number = phonenumbers.parse(value, settings.CASHBACK_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("Enter a valid phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("Enter a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

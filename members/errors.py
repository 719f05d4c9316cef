import math
from datetime import datetime

from core.errors import AuthenticationFailed, Conflict, DomainError, PermissionDenied, Throttled


class MemberTokenInvalid(AuthenticationFailed):
    """Forged, malformed, or another app's: a till signs the member in again."""

    default_message = "The member token is invalid."
    reason = "member_token_invalid"


class MemberTokenMissing(MemberTokenInvalid):
    default_message = "A member token is required: X-Member-Token or Authorization: Bearer."
    reason = "member_token_missing"


class MemberTokenExpired(MemberTokenInvalid):
    default_message = "The member token has expired; sign the member in again."
    reason = "member_token_expired"


class MemberMismatch(PermissionDenied):
    default_message = "The member in the body is not the member of the token."


class MemberConflict(Conflict):
    code = "member_conflict"
    default_message = (
        "The email and the phone belong to two different members; name the member by "
        "member_id, or by one of them."
    )


class PinNotSet(DomainError):
    code = "pin_not_set"
    default_message = "The member has no PIN."


class InvalidPin(PermissionDenied):
    code = "invalid_pin"
    default_message = "The PIN is wrong."


class PinLocked(DomainError):
    """While a member's PIN is locked, every redeem of the member is refused, with or without
    a PIN: `details.locked_until`, and `Retry-After` in seconds."""

    status_code = 423
    code = "pin_locked"
    default_message = "Too many wrong PINs; the member cannot redeem until the lock ends."

    @classmethod
    def until(cls, locked_until: datetime, *, now: datetime) -> "PinLocked":
        wait = max(1, math.ceil((locked_until - now).total_seconds()))
        return cls(details={"locked_until": locked_until}, retry_after=wait)


class InvalidOtp(DomainError):
    code = "invalid_otp"
    default_message = "The code is wrong or expired."


class TooManyAttempts(Throttled):
    code = "too_many_attempts"
    default_message = "Too many wrong codes; request a new one."

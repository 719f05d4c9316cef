from core.errors import AuthenticationFailed, DomainError, PermissionDenied, Throttled


class MemberTokenInvalid(AuthenticationFailed):
    default_message = "The member token is missing, expired or invalid."


class MemberMismatch(PermissionDenied):
    default_message = "The member in the body is not the member of the token."


class PinNotSet(DomainError):
    code = "pin_not_set"
    default_message = "The member has no PIN."


class InvalidPin(PermissionDenied):
    code = "invalid_pin"
    default_message = "The PIN is wrong."


class PinLocked(DomainError):
    status_code = 423
    code = "pin_locked"
    default_message = "Too many wrong PINs; the PIN is locked for now."


class InvalidOtp(DomainError):
    code = "invalid_otp"
    default_message = "The code is wrong or expired."


class TooManyAttempts(Throttled):
    code = "too_many_attempts"
    default_message = "Too many wrong codes; request a new one."

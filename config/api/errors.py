"""Domain errors: one class per error, each carrying its stable code and HTTP status.

Services raise these; `config.api.exceptions.api_exception_handler` renders them in the
contract's envelope. They do not depend on DRF, so the admin and commands can raise and catch
them too.
"""

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "validation_error"
    default_message = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ):
        self.message = message or self.default_message
        self.details = details or {}
        self.retry_after = retry_after  # seconds, sent as Retry-After
        super().__init__(self.message)


class InvalidInput(DomainError):
    """A value that passed the type checks but breaks a rule that needs more context."""


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class MemberTokenInvalid(DomainError):
    status_code = 401
    code = "authentication_failed"
    default_message = "The member token is missing, expired or invalid."


class MemberMismatch(DomainError):
    status_code = 403
    code = "permission_denied"
    default_message = "The member in the body is not the member of the token."


class PinNotAllowed(DomainError):
    code = "pin_not_allowed"
    default_message = "This card does not allow PIN redemption."


class PinNotSet(DomainError):
    code = "pin_not_set"
    default_message = "The member has no PIN."


class InvalidPin(DomainError):
    status_code = 403
    code = "invalid_pin"
    default_message = "The PIN is wrong."


class PinLocked(DomainError):
    status_code = 423
    code = "pin_locked"
    default_message = "Too many wrong PINs; the PIN is locked for now."


class DuplicateReference(DomainError):
    status_code = 409
    code = "duplicate_reference"
    default_message = "This reference was already used on this card for another request."


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with another request."


class RequestInProgress(DomainError):
    status_code = 409
    code = "request_in_progress"
    default_message = "A request with this Idempotency-Key is still running; retry shortly."


class InsufficientBalance(DomainError):
    status_code = 422
    code = "insufficient_balance"
    default_message = "The balance is lower than the amount to redeem."


class BelowMinimumPurchase(DomainError):
    status_code = 422
    code = "below_minimum_purchase"
    default_message = "The purchase is below the card's minimum for cashback."


class CardInactive(DomainError):
    status_code = 422
    code = "card_inactive"
    default_message = "This card is inactive."


class RefundExceedsPurchase(DomainError):
    status_code = 422
    code = "refund_exceeds_purchase"
    default_message = "The refunds would exceed the original purchase."


class InvalidOtp(DomainError):
    code = "invalid_otp"
    default_message = "The code is wrong or expired."


class TooManyAttempts(DomainError):
    status_code = 429
    code = "too_many_attempts"
    default_message = "Too many wrong codes; request a new one."


class Throttled(DomainError):
    status_code = 429
    code = "throttled"
    default_message = "Too many requests; retry later."

"""The base of every domain error, and the generic ones any app may raise.

An error carries its stable `code`, its HTTP status and `details`; `core.api.exceptions` renders
it in the contract's envelope. Errors do not depend on DRF, so the admin and the commands raise
and catch them too. A domain's own errors live in its app (`members/errors.py`, ...) and derive
from these.
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


class AuthenticationFailed(DomainError):
    """A 401. `details.reason` tells a client what to do: its own subclasses name theirs."""

    status_code = 401
    code = "authentication_failed"
    default_message = "The credentials are missing or invalid."
    reason = "credentials_invalid"

    def __init__(self, message: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.details.setdefault("reason", self.reason)


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"
    default_message = "You do not have permission to do this."


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(DomainError):
    status_code = 409


class Unprocessable(DomainError):
    """A well-formed request that the current state refuses (422)."""

    status_code = 422


class Throttled(DomainError):
    status_code = 429
    code = "throttled"
    default_message = "Too many requests; retry later."


class ServiceUnavailable(DomainError):
    """A 503: the service cannot do it right now, through no fault of the request; safe to
    retry after `Retry-After` with the same Idempotency-Key."""

    status_code = 503
    code = "service_unavailable"
    default_message = "The service cannot do this right now; retry shortly."

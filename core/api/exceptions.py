"""The one place that turns an exception into the contract's error envelope."""

import logging
import math

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.errors import AuthenticationFailed, DomainError

logger = logging.getLogger("cashback.request")

# DRF's exceptions, by class, to the contract's (status, code). The first match wins.
_DRF_CODES: list[tuple[type[Exception], int, str]] = [
    (exceptions.NotAuthenticated, http.HTTP_401_UNAUTHORIZED, "authentication_failed"),
    (exceptions.AuthenticationFailed, http.HTTP_401_UNAUTHORIZED, "authentication_failed"),
    (exceptions.PermissionDenied, http.HTTP_403_FORBIDDEN, "permission_denied"),
    (exceptions.NotFound, http.HTTP_404_NOT_FOUND, "not_found"),
    (exceptions.MethodNotAllowed, http.HTTP_405_METHOD_NOT_ALLOWED, "method_not_allowed"),
    (exceptions.Throttled, http.HTTP_429_TOO_MANY_REQUESTS, "throttled"),
    (exceptions.ParseError, http.HTTP_400_BAD_REQUEST, "parse_error"),
    # The contract has no 415: a body in another format is a body we cannot parse.
    (exceptions.UnsupportedMediaType, http.HTTP_400_BAD_REQUEST, "parse_error"),
    (exceptions.ValidationError, http.HTTP_400_BAD_REQUEST, "validation_error"),
]


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"success": False, "error": {"code": code, "message": message, "details": details or {}}}


# The database unreachable, restarting, or its connection lost mid-request (a deadlock or a
# cancelled statement too): nothing was committed that a retry would repeat, since every
# operation is one transaction and replays by its key or reference.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_UNAVAILABLE = 1  # second


def unavailable_response() -> JsonResponse:
    """`503 service_unavailable` with `Retry-After`: safe to retry with the same
    Idempotency-Key."""
    response = JsonResponse(
        error_body(
            "service_unavailable",
            "The service cannot reach its database right now; retry shortly with the same "
            "Idempotency-Key.",
        ),
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    return response


def _message(detail) -> str:
    if isinstance(detail, str):
        return detail
    return "The request is invalid."


def api_exception_handler(exc, context):
    if isinstance(exc, DATABASE_UNAVAILABLE):
        set_rollback()
        logger.warning("Database unavailable: %s", exc)
        return unavailable_response()

    if isinstance(exc, DomainError):
        set_rollback()
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return Response(
            error_body(exc.code, exc.message, exc.details), status=exc.status_code, headers=headers
        )

    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = exceptions.ParseError(f"The body is larger than {limit} bytes.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: ApiErrorMiddleware logs it and answers the 500 envelope

    status_code, code = next(
        ((status, code) for cls, status, code in _DRF_CODES if isinstance(exc, cls)),
        (exc.status_code, exc.default_code),
    )

    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if (wait := getattr(exc, "wait", None)) is not None:
        headers["Retry-After"] = str(math.ceil(wait))

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = error_body(code, "The request is invalid.", detail)
    elif status_code == http.HTTP_401_UNAUTHORIZED:  # the app's credentials
        body = error_body(code, _message(exc.detail), {"reason": AuthenticationFailed.reason})
    else:
        body = error_body(code, _message(exc.detail))
    set_rollback()
    return Response(body, status=status_code, headers=headers)

"""Request ids on every response and log line; the error envelope for what DRF does not see."""

import logging
import re
import time
import uuid

from django.http import JsonResponse

from core.api.exceptions import DATABASE_UNAVAILABLE, error_body, unavailable_response
from core.api.request_id import request_id_var
from core.generations import request_scope

logger = logging.getLogger("cashback.request")
access_logger = logging.getLogger("cashback.access")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes the caller's `X-Request-Id` when it is sane, else makes one; echoes it back. Opens
    the request's scope: its id for the log lines, the configuration generation it reads once
    (`core.generations`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            request.request_id = request_id
            with request_scope():
                response = self.get_response(request)
            response["X-Request-Id"] = request_id
            if _is_api(request):
                access_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "app_id": getattr(getattr(request, "auth", None), "app_id", None),
                    },
                )
            return response
        finally:
            request_id_var.reset(token)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


class ApiErrorMiddleware:
    """Under /api/, unknown routes and unhandled exceptions answer in the error envelope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if _is_api(request) and response.status_code in (404, 405) and not _is_json(response):
            if response.status_code == 404:
                return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
            return JsonResponse(
                error_body("method_not_allowed", f"Method {request.method} not allowed."),
                status=405,
            )
        return response

    def process_exception(self, request, exception):
        if not _is_api(request):
            return None
        if isinstance(exception, DATABASE_UNAVAILABLE):
            logger.warning(
                "Database unavailable on %s %s: %s", request.method, request.path, exception
            )
            return unavailable_response()
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return JsonResponse(
            error_body("server_error", "An unexpected error occurred. It has been logged."),
            status=500,
        )


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")

"""`Idempotency-Key` on POST actions: claim the key, run once, keep and replay the response."""

from functools import wraps

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

from cashback.fingerprint import digest
from cashback.models import IdempotencyRecord
from cashback.services.idempotency import (
    idempotency_abandon,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
)
from config.api.renderers import DecimalJSONRenderer

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description="1 to 255 characters. A retry with the same key and body replays the first "
    "response (with `Idempotent-Replayed: true`); another body is 409 idempotency_key_reused.",
)
# Refused before the operation ran: nothing is kept, so a corrected retry runs.
NOT_KEPT = {400, 401, 403, 429}


def idempotent(action=None, *, subject=None):
    """Wraps a viewset action. Authentication and scopes have run already (DRF's `initial`).

    `subject(request)` names who the request acts for beyond the body (the member of the
    `X-Member-Token`); it is authenticated before the key is claimed and is part of the
    request's digest, so one member's retry never replays another's response.
    """
    if action is None:
        return lambda action: idempotent(action, subject=subject)

    @wraps(action)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return action(view, request, *args, **kwargs)
        if not 1 <= len(key) <= 255:
            raise ValidationError({HEADER: ["Must be 1 to 255 characters."]})
        request_fingerprint = digest(
            {
                "method": request.method,
                "path": request.path,
                "body": request.data,
                "subject": subject(request) if subject else None,
            }
        )
        record = idempotency_claim(
            app=request.auth, key=key, request_fingerprint=request_fingerprint
        )
        if record.state == IdempotencyRecord.COMPLETED:
            response = HttpResponse(
                record.response_body,
                status=record.response_status,
                content_type="application/json",
            )
            response[REPLAYED] = "true"
            return response

        request.idempotency_record = record
        try:
            try:
                response = action(view, request, *args, **kwargs)
            except Exception as exc:
                response = view.handle_exception(exc)  # re-raises what it cannot answer
        except Exception:
            idempotency_abandon(record=record)
            raise
        if response.status_code in NOT_KEPT:
            # A key taken over from a request that stopped may already own an entry: keep it,
            # so that the next retry replays that entry instead of running again.
            if record.claimed_new:
                idempotency_release(record=record)
            else:
                idempotency_abandon(record=record)
        elif response.status_code >= 500:
            idempotency_abandon(record=record)
        else:
            body = DecimalJSONRenderer().render(response.data).decode()
            idempotency_complete(record=record, status=response.status_code, body=body)
        return response

    return wrapper


def idempotency_record(request) -> IdempotencyRecord | None:
    """The record the current request runs under, if it sent an `Idempotency-Key`."""
    return getattr(request, "idempotency_record", None)

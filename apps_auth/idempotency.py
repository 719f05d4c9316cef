"""`Idempotency-Key` on POST actions: claim the key, run once, keep and replay the response.

The record belongs to the app. `idempotent` wraps a viewset action; the `idempotency_*`
functions are the record's life: claimed, completed (its response kept), released (refused
before it ran), abandoned (a server error), purged after the retention period.
"""

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, router
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from psycopg import errors
from rest_framework.exceptions import ValidationError

from apps_auth.errors import IdempotencyKeyReused, RequestInProgress
from apps_auth.models import App, IdempotencyRecord
from apps_auth.queries import IDEMPOTENCY_CLAIM, IDEMPOTENCY_COMPLETE
from core.api.renderers import DecimalJSONRenderer
from core.api.responses import NOT_KEPT, REPLAYED
from core.api.schema import PARSE_ERROR, VALIDATION_ERROR, ParameterWithErrors
from core.api.serializers import validated
from core.fingerprint import digest
from core.rows import inserted, mark_saved, prepared_cursor, prepared_values

HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = ParameterWithErrors(
    HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description="Any 1 to 255 characters you choose per operation, e.g. a UUID; send the same "
    "again when you retry it (a timeout, a 503). For 24 hours, a retry with the same key and "
    "body answers the first response again, with `Idempotent-Replayed: true`, and does nothing "
    "more; the same key with another body is 409 idempotency_key_reused.",
    errors=(IdempotencyKeyReused, RequestInProgress, VALIDATION_ERROR, PARSE_ERROR),
)
# How long a key is kept and replayed.
RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class Withheld:
    """A credential in a success answer that is never stored: `keep` takes it out of the data
    kept for replays, `restore` makes it again for a replay."""

    keep: Callable[[dict], dict]
    restore: Callable[[dict], dict]


def idempotent(action=None, *, input=None, subject=None, withheld: Withheld | None = None):
    """Wraps a viewset action. Authentication and scopes have run already (DRF's `initial`).

    `input` is the action's input serializer: the body is validated here (a 400 keeps nothing)
    and the action gets it, validated, as `params`. The key is compared on the request as
    understood, not as typed: `"20 123 456"` and `"+21620123456"` are one phone, `12` and
    `"12.000"` one amount. `subject(request)` names who the request acts for beyond the body
    (the member of the member token); it is authenticated before the body is read and is part
    of the request's digest, so one member's retry never replays another's response. `withheld`
    keeps a credential the answer carries (a member token) out of the database.
    """
    if action is None:
        return lambda action: idempotent(action, input=input, subject=subject, withheld=withheld)

    @wraps(action)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is not None and not 1 <= len(key) <= 255:
            raise ValidationError({HEADER: ["Must be 1 to 255 characters."]})
        subject_value = subject(request) if subject else None
        understood = request.data
        if input is not None:
            kwargs["params"] = params = validated(input, request.data)
            understood = params.validated_data
        if key is None:
            return action(view, request, *args, **kwargs)
        request_line = {"method": request.method, "path": request.path, "subject": subject_value}
        fingerprint = request_fingerprint(**request_line, body=understood)

        # Keys kept before requests were compared as understood hold the body as typed; until
        # they leave the retention period, a retry may match that too (read only then).
        def as_typed() -> str:
            return request_fingerprint(**request_line, body=request.data)

        record = idempotency_claim(
            app=request.auth, key=key, request_fingerprint=fingerprint, as_typed=as_typed
        )
        if record.state == IdempotencyRecord.COMPLETED:
            body = record.response_body
            if withheld and _is_success(record.response_status):
                kept = json.loads(body, parse_float=Decimal)
                body = _render({**kept, "data": withheld.restore(kept["data"])})
            response = HttpResponse(
                body, status=record.response_status, content_type="application/json"
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
            kept = response.data
            if withheld and _is_success(response.status_code):
                kept = {**kept, "data": withheld.keep(kept["data"])}
            idempotency_complete(record=record, status=response.status_code, body=_render(kept))
        return response

    return wrapper


def _is_success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def _render(data) -> str:
    return DecimalJSONRenderer().render(data).decode()


def request_fingerprint(*, method: str, path: str, body, subject) -> str:
    """What tells a retry from another request under the same key: the request as understood
    (see `core.fingerprint`), keyed with a server secret (HMAC-SHA256), so that a body with a
    guessable secret in it (a 4-digit PIN, a 6-digit code) cannot be searched out of the
    digest without that key. The secrets stay in: the same key with another PIN or code is
    another request (409), never a replay of the first one's answer."""
    plain = digest({"method": method, "path": path, "body": body, "subject": subject})
    return fingerprint_keyed(plain)


def fingerprint_keyed(plain: str) -> str:
    # Whoever holds SECRET_KEY could also sign member tokens: this key is no weaker a link.
    key = f"idempotency:{settings.SECRET_KEY}".encode()
    return hmac.new(key, plain.encode(), hashlib.sha256).hexdigest()


def idempotency_record(request) -> IdempotencyRecord | None:
    """The record the current request runs under, if it sent an `Idempotency-Key`."""
    return getattr(request, "idempotency_record", None)


def idempotency_claim(
    *,
    app: App,
    key: str,
    request_fingerprint: str,
    as_typed: Callable[[], str] | None = None,
) -> IdempotencyRecord:
    """Claims `key` for this request, in a transaction of its own so that a twin sees it at once.

    Returns the record: `in_progress` when this request is to run (a new key, or one whose
    earlier request stopped without an answer), `completed` when its response is to be replayed.
    A key older than the retention period counts as new. `as_typed()`: the fingerprint of the
    body as typed, which a key kept by an earlier release holds. Raises `IdempotencyKeyReused`
    for another request under this key and `RequestInProgress` while the first one runs.
    """
    for _ in range(3):
        now = timezone.now()
        lease_until = now + timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)
        record = _insert(
            app=app,
            key=key,
            request_fingerprint=request_fingerprint,
            state=IdempotencyRecord.IN_PROGRESS,
            lease_until=lease_until,
        )
        if record is not None:
            record.claimed_new = True
            return record
        record = IdempotencyRecord.objects.filter(app=app, key=key).first()
        if record is None:
            continue  # purged in between: claim again
        if record.created_at < now - RETENTION:
            IdempotencyRecord.objects.filter(app=app, pk=record.pk).delete()
            continue
        if record.request_fingerprint != request_fingerprint and not (
            as_typed is not None and record.request_fingerprint == as_typed()
        ):
            raise IdempotencyKeyReused()
        if record.state == IdempotencyRecord.COMPLETED:
            return record
        taken_over = IdempotencyRecord.objects.filter(
            app=app, pk=record.pk, state=IdempotencyRecord.IN_PROGRESS, lease_until__lt=now
        ).update(lease_until=lease_until)
        if taken_over:
            record.lease_until = lease_until
            return record
        raise RequestInProgress()
    raise RequestInProgress()


def _insert(**fields) -> IdempotencyRecord | None:
    """Inserts the record, or returns None when the key is taken (`IDEMPOTENCY_CLAIM`). Outside
    a transaction the INSERT commits on its own: one round trip, and a twin sees the key at
    once."""
    using = router.db_for_write(IdempotencyRecord)
    record = IdempotencyRecord(**fields)
    # A taken key writes nothing (ON CONFLICT). Outside a transaction, as a request claims its
    # key, the app's foreign key is checked as the INSERT commits: an app gone meanwhile is a
    # key that cannot be claimed (409), not a server error. Any other refusal is a bug, raised.
    try:
        row = inserted(IDEMPOTENCY_CLAIM, prepared_values(record, using), using)
    except IntegrityError as error:
        if not isinstance(error.__cause__, errors.ForeignKeyViolation):
            raise
        return None
    if row is None:
        return None
    mark_saved(record, row[0], using)
    return record


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: str) -> None:
    """Keeps the response of a request that ran, for replays (`IDEMPOTENCY_COMPLETE`)."""
    using = router.db_for_write(IdempotencyRecord)
    with prepared_cursor(using) as cursor:
        cursor.execute(
            IDEMPOTENCY_COMPLETE,
            {"app": record.app_id, "id": record.pk, "status": status, "body": body},
        )


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forgets the key of a request refused before it ran (400, 401, 403, 429), unless an entry
    already holds it (then the key must keep protecting that entry)."""
    IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.IN_PROGRESS, entry__isnull=True
    ).delete()


def idempotency_abandon(*, record: IdempotencyRecord) -> None:
    """After a server error, lets the next retry take the key over at once.

    The record is kept: if the operation had committed, its entry is linked to the record and
    the retry replays it instead of running it again.
    """
    IdempotencyRecord.objects.filter(
        app_id=record.app_id, pk=record.pk, state=IdempotencyRecord.IN_PROGRESS
    ).update(lease_until=timezone.now() - timedelta(seconds=1))


def idempotency_purge(*, older_than: timedelta = RETENTION) -> int:
    """Deletes the keys created before `older_than` ago, app by app (each on the app's index by
    time, `idempotency_created`); returns how many."""
    cutoff = timezone.now() - older_than
    deleted = 0
    for app_id in App.objects.order_by("pk").values_list("pk", flat=True):
        records = IdempotencyRecord.objects.filter(app_id=app_id, created_at__lt=cutoff)
        deleted += records.delete()[0]
    return deleted

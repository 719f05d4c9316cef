"""`Idempotency-Key` records: claim a key, keep the response, replay it, purge old keys."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps_auth.models import App
from cashback.models import IdempotencyRecord
from config.api.errors import IdempotencyKeyReused, RequestInProgress

RETENTION = timedelta(hours=24)


def idempotency_claim(*, app: App, key: str, request_fingerprint: str) -> IdempotencyRecord:
    """Claims `key` for this request, in a transaction of its own so that a twin sees it at once.

    Returns the record: `in_progress` when this request is to run (a new key, or one whose
    earlier request stopped without an answer), `completed` when its response is to be replayed.
    A key older than the retention period counts as new. Raises `IdempotencyKeyReused` for
    another request under this key and `RequestInProgress` while the first one runs.
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
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            continue
        if record.request_fingerprint != request_fingerprint:
            raise IdempotencyKeyReused()
        if record.state == IdempotencyRecord.COMPLETED:
            return record
        taken_over = IdempotencyRecord.objects.filter(
            pk=record.pk, state=IdempotencyRecord.IN_PROGRESS, lease_until__lt=now
        ).update(lease_until=lease_until)
        if taken_over:
            record.lease_until = lease_until
            return record
        raise RequestInProgress()
    raise RequestInProgress()


def _insert(**fields) -> IdempotencyRecord | None:
    """Inserts the record, or returns None when the key is taken. Outside a transaction the
    INSERT commits on its own: one round trip, and a twin sees the key at once."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(**fields)
        return IdempotencyRecord.objects.create(**fields)
    except IntegrityError:
        return None


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: str) -> None:
    """Keeps the response of a request that ran, for replays."""
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.COMPLETED, response_status=status, response_body=body
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
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.IN_PROGRESS).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )


def idempotency_purge(*, older_than: timedelta = RETENTION) -> int:
    """Deletes the keys created before `older_than` ago; returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted

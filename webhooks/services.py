import base64
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from procrastinate import manager as procrastinate_manager
from procrastinate import tasks as procrastinate_tasks
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.contrib.django.models import ProcrastinateJob

from apps_auth.models import App, Mode
from core.api.renderers import DecimalJSONRenderer
from core.errors import InvalidInput
from core.rows import new
from webhooks.destinations import destination_check
from webhooks.models import (
    DeliveryStatus,
    EventDraft,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.sending import SendFailed, webhook_post
from webhooks.signing import webhook_headers

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105  the Standard Webhooks prefix, not a secret
# After a rotation the previous secret keeps signing beside the new one this long.
ROTATION_OVERLAP = timedelta(hours=24)


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _events_clean(events: list[str] | None) -> list[str]:
    unknown = sorted(set(events or []) - set(EventType.values))
    if unknown:
        raise InvalidInput(
            "Unknown events.",
            details={"events": [f"Choose from {', '.join(EventType.values)}; got {unknown}."]},
        )
    return sorted(set(events or []))


def webhook_endpoint_create(
    *, app: App, url: str, events: list[str] | None = None
) -> WebhookEndpoint:
    """Registers an endpoint with a new secret. No `events`: every event.

    Raises `InvalidInput` for unknown events and for a URL the app may not send to: a
    live-mode app's must be `https` and resolve to public addresses only; a test-mode app may
    also use `http` and loopback (`webhooks.destinations`).
    """
    cleaned = _events_clean(events)
    destination_check(url, live=app.mode == Mode.LIVE)
    return WebhookEndpoint.objects.create(
        app=app, url=url, events=cleaned, secret=webhook_secret_new()
    )


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Stops deliveries to the endpoint; it is kept, as deleted, for the record."""
    if endpoint.deleted_at is None:
        endpoint.deleted_at = timezone.now()
        endpoint.save(update_fields=["deleted_at"])
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Gives the endpoint a new secret; the one in force keeps signing beside it for
    `ROTATION_OVERLAP`, so that the receiver can switch without missing an event. A secret
    rotated out earlier stops signing at once."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
    locked.secret = webhook_secret_new()
    locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return locked


# Events and their deliveries (a transactional outbox, carried out by the worker).

DELIVER_TASK = "webhook_deliver"  # webhooks.tasks.webhook_deliver
# Jobs are queued on Django's own connection, so inside the caller's transaction: rolled back
# with it, and visible to the worker only once it commits. (The worker's app talks to the
# database through a pool of its own; this manager does not.)
_jobs = procrastinate_manager.JobManager(DjangoConnector())
# A pending delivery this late, whose job is neither queued nor running, has lost its job.
SWEEP_GRACE = timedelta(minutes=5)
_random = secrets.SystemRandom()
_render = DecimalJSONRenderer()


def _deliveries_queue(deliveries: Iterable[WebhookDelivery], *, at: datetime | None) -> None:
    """Queues one job per delivery, due at `at` (None: now), and records it on the delivery
    as the one job that may attempt it next (the caller saves `job_id`)."""
    deliveries = list(deliveries)
    if not deliveries:
        return
    queued = _jobs.batch_defer_jobs(
        [
            procrastinate_tasks.configure_task(
                name=DELIVER_TASK,
                job_manager=_jobs,
                schedule_at=at,
                task_kwargs={"delivery_id": delivery.pk},
            ).job
            for delivery in deliveries
        ]
    )
    for delivery, job in zip(deliveries, queued, strict=True):
        delivery.job_id = job.id


def event_draft(*, app_id: int, event_type: str, data: dict) -> EventDraft:
    """A new event of the app, its body rendered once, as the API renders (amounts as exact
    JSON numbers), so that every endpoint is sent exactly that text:
    {"id", "type", "created_at", "app_id", "data"}, the app's public id being put in by the
    statement that saves the event, which reads it."""
    event = new(WebhookEvent, app_id=app_id, event_type=event_type)
    head = {"id": event.public_id, "type": event_type, "created_at": event.created_at}
    return EventDraft(
        event=event,
        head=_render.render(head).decode().removesuffix("}") + ',"app_id":',
        tail=',"data":' + _render.render(data).decode() + "}",
        data=data,
    )


def event_deliveries_create(draft: EventDraft) -> None:
    """Queues the delivery of a saved event to each of the endpoints that take it, in the
    transaction that saved it."""
    event = draft.event
    if draft.endpoint_ids:
        deliveries = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    app_id=event.app_id,
                    event=event,
                    endpoint_id=pk,
                    next_attempt_at=event.created_at,
                )
                for pk in draft.endpoint_ids
            ]
        )
        _deliveries_queue(deliveries, at=None)
        WebhookDelivery.objects.filter(app_id=event.app_id).bulk_update(deliveries, ["job_id"])


@transaction.atomic(savepoint=False)
def event_record(*, app_id: int, event_type: str, data: dict) -> WebhookEvent:
    """Records an event of the app and queues its delivery to each of the app's endpoints that
    takes this type; called inside the transaction that writes what the event tells of, so
    that the event, its deliveries and their jobs exist if and only if that commits.

    Without endpoints it writes the event alone. (A ledger entry's event is saved by the
    statement that saves the entry: `cashback.events`.)
    """
    draft = event_draft(app_id=app_id, event_type=event_type, data=data)
    WebhookEvent.objects.insert_for_endpoints(draft)
    event_deliveries_create(draft)
    return draft.event


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter: a wait drawn from 0 to BASE × 2^(attempts − 1)
    seconds, capped at WEBHOOK_RETRY_MAX_SECONDS."""
    ceiling = min(
        settings.WEBHOOK_RETRY_MAX_SECONDS,
        settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 30),
    )
    return timedelta(seconds=_random.uniform(0, ceiling))


def _attempt(delivery: WebhookDelivery, *, at: datetime) -> tuple[int | None, str]:
    """POSTs the event to the endpoint; returns (the answer's status or None, what went
    wrong or "")."""
    endpoint, event = delivery.endpoint, delivery.event
    try:
        # Checked again now, and sent to an address this check allowed (no second lookup).
        destination = destination_check(endpoint.url, live=endpoint.app.mode == Mode.LIVE)
    except InvalidInput as refused:
        return None, f"Refused: {refused.message}"
    headers = webhook_headers(endpoint=endpoint, event_id=event.public_id, body=event.body, at=at)
    try:
        answer = webhook_post(
            destination,
            body=event.body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        )
    except SendFailed as failed:
        return None, str(failed)[:2000]
    if 200 <= answer.status < 300:
        return answer.status, ""
    return answer.status, f"HTTP {answer.status}"


def webhook_delivery_attempt(
    *, delivery_id: int, job_id: int | None = None
) -> WebhookDelivery | None:
    """Makes one attempt at a pending delivery, when `job_id` is the job that carries it (None:
    whichever). A 2xx delivers it; anything else counts the attempt, records the answer or the
    error and queues the next try after a backoff, in this same transaction, or fails the
    delivery once its first attempt is `WEBHOOK_RETRY_FOR_HOURS` old. A deleted endpoint fails
    it without a POST. Returns the delivery, or None when there was nothing to do (delivered,
    failed, another job's, or being attempted right now).

    The row stays locked during the POST: a worker killed meanwhile leaves it as it was, and
    its job is run again (at least once).
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint__app")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None or (job_id is not None and delivery.job_id != job_id):
            return None
        now = timezone.now()
        if delivery.endpoint.deleted_at is not None:
            status_code, error = None, "The endpoint was deleted."
            delivery.status = DeliveryStatus.FAILED
        else:
            status_code, error = _attempt(delivery, at=now)
            now = timezone.now()
            delivery.attempts += 1
            delivery.first_attempt_at = delivery.first_attempt_at or now
            delivery.last_attempt_at = now
            retry_until = delivery.first_attempt_at + timedelta(
                hours=settings.WEBHOOK_RETRY_FOR_HOURS
            )
            if not error:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = now
            elif now >= retry_until:
                delivery.status = DeliveryStatus.FAILED
        delivery.last_status_code = status_code
        delivery.last_error = error
        if delivery.status == DeliveryStatus.PENDING:
            delivery.next_attempt_at = now + _backoff(delivery.attempts)
            _deliveries_queue([delivery], at=delivery.next_attempt_at)
        else:
            delivery.next_attempt_at = None
            delivery.job_id = None
        delivery.save()
    logger.info(
        "webhook %s to %s: %s (attempt %d)%s",
        delivery.event.public_id,
        delivery.endpoint.url,
        delivery.status,
        delivery.attempts,
        f", {error}" if error else "",
    )
    return delivery


@transaction.atomic
def webhook_deliveries_resend(*, delivery_ids: Iterable[int]) -> int:
    """Queues the deliveries again, due now, whatever their status: a delivered one is sent
    again as a new attempt with its event's `webhook-id`; a failed one is retried for another
    `WEBHOOK_RETRY_FOR_HOURS`. Returns how many."""
    deliveries = list(
        WebhookDelivery.objects.select_for_update().filter(pk__in=list(delivery_ids)).order_by("pk")
    )
    now = timezone.now()
    for delivery in deliveries:
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now
        delivery.first_attempt_at = None
    _deliveries_queue(deliveries, at=None)
    WebhookDelivery.objects.bulk_update(
        deliveries, ["status", "next_attempt_at", "first_attempt_at", "job_id"]
    )
    return len(deliveries)


@transaction.atomic
def webhook_deliveries_sweep(*, as_of: datetime) -> int:
    """Queues again the pending deliveries overdue by `SWEEP_GRACE` whose job is neither queued
    nor running (lost with a database restored from a backup, or failed on an error of ours).
    Returns how many."""
    live_job = ProcrastinateJob.objects.filter(pk=OuterRef("job_id"), status__in=["todo", "doing"])
    deliveries = list(
        WebhookDelivery.objects.select_for_update(skip_locked=True)
        .filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=as_of - SWEEP_GRACE)
        .exclude(Exists(live_job))
        .order_by("next_attempt_at")[:1000]
    )
    _deliveries_queue(deliveries, at=None)
    WebhookDelivery.objects.bulk_update(deliveries, ["job_id"])
    if deliveries:
        logger.warning("webhook deliveries queued again: %d had lost their job", len(deliveries))
    return len(deliveries)

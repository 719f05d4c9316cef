import base64
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps_auth.models import App, Mode
from core.api.renderers import DecimalJSONRenderer
from core.errors import InvalidInput
from webhooks.destinations import ResolverBusy, destination_check
from webhooks.errors import EndpointLimitReached
from webhooks.models import (
    DELIVERIES_CHANNEL,
    DeliveryStatus,
    EventDraft,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.selectors import webhook_endpoint_list
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
    also use `http` and loopback where allowed (`webhooks.destinations`). Raises
    `EndpointLimitReached` when the app holds `CASHBACK_WEBHOOK_ENDPOINTS_PER_APP` enabled
    endpoints already: every endpoint costs the worker attempts, and one app must not be able
    to take the worker's time from the others.
    """
    cleaned = _events_clean(events)
    destination_check(url, live=app.mode == Mode.LIVE)
    with transaction.atomic():
        _endpoint_room_check(app)
        return WebhookEndpoint.objects.create(
            app=app, url=url, events=cleaned, secret=webhook_secret_new()
        )


def _endpoint_room_check(app: App) -> None:
    """Raises `EndpointLimitReached` when the app holds `CASHBACK_WEBHOOK_ENDPOINTS_PER_APP`
    enabled endpoints. Locks the app's row until the transaction ends, so that the count holds
    until the endpoint it makes room for is committed: FOR NO KEY UPDATE, which the app's
    ledger entries, referring to the row, do not wait for."""
    App.objects.select_for_update(no_key=True).filter(pk=app.pk).first()
    limit = settings.CASHBACK_WEBHOOK_ENDPOINTS_PER_APP
    if webhook_endpoint_list(app=app).filter(enabled=True).count() >= limit:
        raise EndpointLimitReached(details={"limit": limit})


@transaction.atomic
def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Enables a disabled endpoint again, its failures forgotten. Raises
    `EndpointLimitReached` when the app holds as many enabled endpoints as it may."""
    locked = WebhookEndpoint.objects.select_for_update().get(app_id=endpoint.app_id, pk=endpoint.pk)
    if locked.enabled:
        return locked
    _endpoint_room_check(locked.app)
    locked.enabled, locked.disabled_at, locked.disabled_reason = True, None, ""
    for name, value in NO_FAILURES.items():
        setattr(locked, name, value)
    locked.save()
    return locked


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

_random = secrets.SystemRandom()
_render = DecimalJSONRenderer()
# An endpoint rests after this many failed attempts in a row: one that fails now and then keeps
# its pace, one that is down costs the worker an attempt per rest.
REST_AFTER_FAILURES = 3
# A delivery whose host could not be looked up, every lookup thread being busy, waits this long.
RESOLVER_BUSY_WAIT = timedelta(seconds=1)
# An endpoint whose failures are over (a 2xx, or staff enabling it again).
NO_FAILURES = {"failures": 0, "failing_since": None, "last_failed_at": None, "paused_until": None}


def event_draft(*, app_id: int, event_type: str, data: dict) -> EventDraft:
    """A new event of the app, its body rendered once, as the API renders (amounts as exact
    JSON numbers), so that every endpoint is sent exactly that text:
    {"id", "type", "created_at", "app_id", "data"}, the app's public id being put in by the
    statement that saves the event, which reads it."""
    event = WebhookEvent(app_id=app_id, event_type=event_type)
    head = {"id": event.public_id, "type": event_type, "created_at": event.created_at}
    return EventDraft(
        event=event,
        head=_render.render(head).decode().removesuffix("}") + ',"app_id":',
        tail=',"data":' + _render.render(data).decode() + "}",
        data=data,
    )


def event_deliveries_create(draft: EventDraft) -> None:
    """Creates the delivery of a saved event to each of the endpoints that take it, due now,
    in the transaction that saved it. The worker is told when it commits (the deliveries'
    insert trigger notifies `DELIVERIES_CHANNEL`) and finds them by their app."""
    event = draft.event
    if draft.endpoint_ids:
        WebhookDelivery.objects.bulk_create(
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


@transaction.atomic(savepoint=False)
def event_record(*, app_id: int, event_type: str, data: dict) -> WebhookEvent:
    """Records an event of the app and its delivery to each of the app's endpoints that takes
    this type; called inside the transaction that writes what the event tells of, so that the
    event and its deliveries exist if and only if that commits.

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
    return timedelta(seconds=_random.uniform(0, _backoff_ceiling(attempts)))


def _backoff_ceiling(attempts: int) -> float:
    return min(
        settings.WEBHOOK_RETRY_MAX_SECONDS,
        settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 30),
    )


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


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """`webhook_delivery_attempt_next` of the one pending delivery `delivery_id`, now: due or
    not, its endpoint at rest or not."""
    return _attempt_first(
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING),
        rests=False,
    )


def webhook_delivery_attempt_next(*, app_id: int) -> WebhookDelivery | None:
    """Makes one attempt at the app's pending delivery due the longest, skipping those being
    attempted right now. Returns the delivery, or None when none is due.

    A 2xx delivers it; anything else counts the attempt, records the answer or the error and
    sets the next try after a backoff, or fails the delivery once its first attempt is
    `WEBHOOK_RETRY_FOR_HOURS` old; and the endpoint rests (`_endpoint_failed`). A delivery to a
    deleted or disabled endpoint is failed without a POST; one to an endpoint at rest waits
    for it, no attempt counted. The row stays locked during the POST: a worker killed
    meanwhile leaves it as it was, due, and the next worker attempts it (at least once).
    """
    return _attempt_first(
        WebhookDelivery.objects.filter(
            app_id=app_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
        ).order_by("next_attempt_at", "id")
    )


def _attempt_first(
    deliveries: QuerySet[WebhookDelivery], *, rests: bool = True
) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = (
            deliveries.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint__app")
            .first()
        )
        if delivery is None:
            return None
        endpoint = delivery.endpoint
        now = timezone.now()
        status_code, error = None, ""
        if endpoint.deleted_at is not None or not endpoint.enabled:
            error = f"The endpoint was {'deleted' if endpoint.deleted_at else 'disabled'}."
            delivery.status = DeliveryStatus.FAILED
        elif rests and endpoint.paused_until is not None and endpoint.paused_until > now:
            # The endpoint rests: this delivery and the others due to it wait until it is
            # rested, in one statement (those being attempted right now are left alone).
            due_to_it = WebhookDelivery.objects.filter(
                app_id=delivery.app_id,
                endpoint_id=endpoint.pk,
                status=DeliveryStatus.PENDING,
                next_attempt_at__lt=endpoint.paused_until,
            ).select_for_update(skip_locked=True)
            WebhookDelivery.objects.filter(
                app_id=delivery.app_id, pk__in=due_to_it.values("pk")
            ).update(next_attempt_at=endpoint.paused_until)
            delivery.next_attempt_at = endpoint.paused_until
            return delivery
        else:
            try:
                status_code, error = _attempt(delivery, at=now)
            except ResolverBusy:
                # No lookup could be started: nothing was tried, so nothing is counted.
                delivery.next_attempt_at = now + RESOLVER_BUSY_WAIT
                delivery.save(update_fields=["next_attempt_at"])
                return delivery
            except Exception as exc:
                # A fault on our side of the attempt is recorded as a failed attempt, so that the
                # delivery waits its backoff (and the endpoint rests) instead of being taken
                # again at once, ahead of the app's others, for ever.
                logger.exception("webhook %s: the attempt failed", delivery.event.public_id)
                status_code, error = None, f"Not sent: {type(exc).__name__}: {exc}"[:2000]
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
                _endpoint_answered(endpoint)
            elif _endpoint_failed(endpoint, at=now, error=error) or now >= retry_until:
                delivery.status = DeliveryStatus.FAILED
        delivery.last_status_code = status_code
        delivery.last_error = error
        if delivery.status == DeliveryStatus.PENDING:
            delivery.next_attempt_at = now + _backoff(delivery.attempts)
        else:
            delivery.next_attempt_at = None
        delivery.save()
    logger.info(
        "webhook %s to %s: %s (attempt %d)%s",
        delivery.event.public_id,
        endpoint.url,
        delivery.status,
        delivery.attempts,
        f", {error}" if error else "",
    )
    return delivery


def _endpoint_answered(endpoint: WebhookEndpoint) -> None:
    """A 2xx: the endpoint's failures are over. Written only when there were some (the row is
    every delivery's to the endpoint)."""
    if any(getattr(endpoint, name) != value for name, value in NO_FAILURES.items()):
        WebhookEndpoint.objects.filter(app_id=endpoint.app_id, pk=endpoint.pk).update(**NO_FAILURES)


def _endpoint_failed(endpoint: WebhookEndpoint, *, at: datetime, error: str) -> bool:
    """A failed attempt: from `REST_AFTER_FAILURES` failures in a row on (a receiver that is
    down, not one that fails now and then), the endpoint rests for the backoff they earn
    (nothing is sent to it meanwhile), or, having failed every attempt for
    `CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS`, is disabled, and the app's other endpoints are
    told (`webhook_endpoint.disabled`). Returns whether it disabled the endpoint.

    Locks the endpoint's row after the delivery's (the one order, so no deadlock) FOR NO KEY
    UPDATE, which the deliveries other turns insert meanwhile, referring to it, do not wait
    for; and updates no other delivery: those being attempted beside this one are locked, and
    each finds the endpoint at rest, or disabled, when its turn comes."""
    locked = WebhookEndpoint.objects.select_for_update(no_key=True).get(
        app_id=endpoint.app_id, pk=endpoint.pk
    )
    quiet = timedelta(seconds=2 * settings.WEBHOOK_RETRY_MAX_SECONDS)
    if locked.last_failed_at is not None and at - locked.last_failed_at > quiet:
        # Nothing was tried for longer than any wait between attempts: whatever failed before,
        # "every attempt failed" starts again from this one.
        locked.failures, locked.failing_since = 0, None
    locked.failures += 1
    locked.failing_since = locked.failing_since or at
    locked.last_failed_at = at
    fields = ["failures", "failing_since", "last_failed_at"]
    if locked.failures >= REST_AFTER_FAILURES:
        rests = locked.failures - REST_AFTER_FAILURES + 1
        locked.paused_until = at + timedelta(seconds=_backoff_ceiling(rests))
        fields.append("paused_until")
    failing_for = at - locked.failing_since
    disabled = locked.enabled and failing_for >= timedelta(
        hours=settings.CASHBACK_WEBHOOK_DISABLE_AFTER_HOURS
    )
    if disabled:
        hours = failing_for.total_seconds() / 3600
        locked.enabled, locked.disabled_at = False, at
        locked.disabled_reason = (
            f"Disabled by the worker: every attempt failed for {hours:.0f} hours "
            f"({locked.failures} in a row); the last: {error}"
        )[:500]
        fields += ["enabled", "disabled_at", "disabled_reason"]
        logger.warning("webhook endpoint %s disabled: %s", locked.pk, locked.disabled_reason)
    locked.save(update_fields=fields)
    if disabled:
        event_record(
            app_id=locked.app_id,
            event_type=EventType.ENDPOINT_DISABLED,
            data={
                "endpoint_id": locked.pk,
                "url": locked.url,
                "disabled_at": locked.disabled_at,
                "failing_since": locked.failing_since,
                "reason": locked.disabled_reason,
            },
        )
    return disabled


def webhook_deliveries_notify(using: str | None = None) -> None:
    """Tells the worker that deliveries are due now (at commit), as the deliveries' insert
    trigger does for new ones."""
    using = using or router.db_for_write(WebhookDelivery)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [DELIVERIES_CHANNEL])


@transaction.atomic
def webhook_deliveries_resend(*, delivery_ids: Iterable[int]) -> int:
    """Makes the deliveries due again now, whatever their status: a delivered one is sent
    again as a new attempt with its event's `webhook-id`; a failed one is retried for another
    `WEBHOOK_RETRY_FOR_HOURS`. Returns how many."""
    count = WebhookDelivery.objects.filter(pk__in=list(delivery_ids)).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), first_attempt_at=None
    )
    if count:
        webhook_deliveries_notify()
    return count

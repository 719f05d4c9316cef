"""One app cannot slow another: with the real worker (`manage.py worker`) busy with an app whose
every receiver accepts a connection and never answers, another app's events still go out within
seconds, and releases and expiries run on time, while the first app's backlog stays large."""

import socket
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cashback.models import EntryType, LedgerEntry, Lot
from cashback.services import cashback_earn
from members.services import MemberRef
from tests.factories import CardFactory, MemberFactory
from tests.webhooks.conftest import wait_until
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import event_record, webhook_endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)

# A stalled receiver holds each attempt this long before the worker gives up on it.
TIMEOUT = 2.0
WITHIN = 5.0  # seconds: "within seconds"


@pytest.fixture
def stalled_address():
    """A port that takes connections into its backlog and never answers them: to a sender, a
    receiver that accepted the request and hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    yield listener.getsockname()
    listener.close()


def _delivered(delivery: WebhookDelivery) -> bool:
    delivery.refresh_from_db()
    return delivery.status == DeliveryStatus.DELIVERED


def test_an_app_whose_receivers_stall_delays_its_own_deliveries_not_another_app_s(
    merchant, other_merchant, stalled_address, receiver, start_worker
):
    host, port = stalled_address
    for n in range(16):
        webhook_endpoint_create(app=merchant.app, url=f"http://{host}:{port}/hooks/{n}")
    for n in range(10):
        event_record(app_id=merchant.app.pk, event_type="cashback.earned", data={"n": n})
    stalled = WebhookDelivery.objects.filter(app=merchant.app)
    assert stalled.count() == 160
    webhook_endpoint_create(app=other_merchant.app, url=receiver.url)
    # The other app's held cashback, due: the worker's release is owed within seconds too.
    card = CardFactory.create(app=other_merchant.app, cashback_holding_days=7)
    member = MemberFactory.create(app=other_merchant.app)
    earning = cashback_earn(
        app=other_merchant.app,
        card=card,
        member_ref=MemberRef(member_id=member.pk),
        purchase_amount=Decimal(100),
    ).entry
    WebhookDelivery.objects.filter(app=other_merchant.app).update(status=DeliveryStatus.DELIVERED)

    start_worker(
        WEBHOOK_TIMEOUT_SECONDS=str(TIMEOUT),
        WORKER_CONCURRENCY="4",
        WEBHOOK_APP_CONCURRENCY="2",
        CASHBACK_LIFECYCLE_CRON="* * * * * */1",
    )
    wait_until(
        lambda: stalled.filter(attempts__gt=0).exists(),
        what="the worker to be busy with the stalled receivers",
    )

    latencies = []
    for n in range(3):
        event_record(app_id=other_merchant.app.pk, event_type="cashback.earned", data={"n": n})
        [delivery] = WebhookDelivery.objects.filter(
            app=other_merchant.app, status=DeliveryStatus.PENDING
        )
        started = time.monotonic()
        wait_until(lambda d=delivery: _delivered(d), timeout=30, what="the other app's event")
        latencies.append(time.monotonic() - started)
        time.sleep(TIMEOUT / 2)
    assert max(latencies) < WITHIN, latencies
    assert len(receiver.received) == 3

    Lot.objects.filter(source=earning).update(available_at=timezone.now() - timedelta(seconds=1))
    due_at = time.monotonic()
    wait_until(
        lambda: LedgerEntry.objects.filter(entry_type=EntryType.RELEASE).exists(),
        timeout=30,
        what="the release",
    )
    assert time.monotonic() - due_at < WITHIN

    # Meanwhile the stalled app's own backlog is still there, waiting its turns.
    assert stalled.filter(status=DeliveryStatus.PENDING).count() > 100

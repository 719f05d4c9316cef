"""The real worker (`manage.py worker`) releases held cashback and expires lots by itself, and
their events reach the app's endpoint."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cashback.ledger_check import ledger_verify
from cashback.models import EntryType, LedgerEntry, Lot
from cashback.services import cashback_earn
from members.services import MemberRef
from tests.factories import CardFactory
from tests.webhooks.conftest import wait_until
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_releases_and_expires_when_due_and_the_events_are_delivered(
    merchant, member, receiver, start_worker
):
    webhook_endpoint_create(app=merchant.app, url=receiver.url)
    held = CardFactory.create(app=merchant.app, cashback_holding_days=7, cashback_min_amount=0)
    expiring = CardFactory.create(app=merchant.app, cashback_expiry_days=30, cashback_min_amount=0)
    ref = MemberRef(member_id=member.pk)
    earning = cashback_earn(
        app=merchant.app, card=held, member_ref=ref, purchase_amount=Decimal(100)
    ).entry
    old = cashback_earn(
        app=merchant.app, card=expiring, member_ref=ref, purchase_amount=Decimal(40)
    ).entry
    # Time has passed: the held earning is due, the other lot has expired.
    past = timezone.now() - timedelta(seconds=1)
    Lot.objects.filter(source=earning).update(available_at=past)
    Lot.objects.filter(source=old).update(expires_at=past)

    start_worker(CASHBACK_LIFECYCLE_CRON="* * * * * */2")  # every 2 seconds
    wait_until(
        lambda: (
            LedgerEntry.objects.filter(
                entry_type__in=[EntryType.RELEASE, EntryType.EXPIRATION]
            ).count()
            == 2
        ),
        what="the release and the expiration",
    )
    wait_until(lambda: len(receiver.received) == 4, what="four deliveries")
    types = sorted(json.loads(r.body)["type"] for r in receiver.received)
    assert types == [
        "cashback.earned",
        "cashback.earned",
        "cashback.expired",
        "cashback.released",
    ]
    assert ledger_verify().mismatches == []

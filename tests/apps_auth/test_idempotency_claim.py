"""An Idempotency-Key is claimed by one statement that writes nothing when the key is taken;
a claim the database refuses for another reason (the app gone meanwhile) is a key that cannot
be claimed, a clear 409, never a server error."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps_auth.errors import RequestInProgress
from apps_auth.idempotency import idempotency_claim
from apps_auth.models import App, IdempotencyRecord

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_taken_key_is_not_claimed_twice_and_writes_nothing(merchant):
    first = idempotency_claim(app=merchant.app, key="till-1", request_fingerprint="a" * 64)
    assert first.claimed_new
    assert first.lease_until > timezone.now() + timedelta(seconds=1)
    with pytest.raises(RequestInProgress):
        idempotency_claim(app=merchant.app, key="till-1", request_fingerprint="a" * 64)
    assert IdempotencyRecord.objects.filter(app=merchant.app, key="till-1").count() == 1


def test_a_claim_for_an_app_that_is_gone_is_refused_as_in_progress(merchant):
    gone = App(pk=merchant.app.pk + 10_000, app_id="app_gone", name="Gone")
    with pytest.raises(RequestInProgress):
        idempotency_claim(app=gone, key="till-1", request_fingerprint="a" * 64)
    assert not IdempotencyRecord.objects.exists()

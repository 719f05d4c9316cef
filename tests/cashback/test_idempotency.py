import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps_auth.idempotency import request_fingerprint
from apps_auth.models import IdempotencyRecord
from cashback.models import LedgerEntry
from members.services import member_pin_set
from tests.factories import MemberFactory
from tests.helpers import balance_of, counts, error, give_balance

API = "/api/v1/cashback/cashback"


def post(api, path, body, key, **headers):
    return api.post(f"{API}/{path}", body, headers={"Idempotency-Key": key, **headers})


def test_a_retry_with_the_same_key_replays_the_first_response(api, card, member):
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    first = post(api, "earn", body, "till-7-0001")
    again = post(api, "earn", {**body, "purchase_amount": Decimal("50.00")}, "till-7-0001")
    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert LedgerEntry.objects.count() == 1
    assert balance_of(member, card) == Decimal("2.5")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"phone": "20 123 456"}, {"phone": "20123456"}),
        ({"phone": "+21620123456"}, {"phone": "+216 20 123 456"}),
        ({"email": "Bob@Example.com"}, {"email": "bob@example.com"}),
        ({"purchase_amount": 12}, {"purchase_amount": "12.000"}),
        ({"purchase_amount": "12.0"}, {"purchase_amount": Decimal("12.00")}),
    ],
)
def test_the_same_key_compares_the_request_as_understood(api, merchant, card, first, second):
    MemberFactory.create(app=merchant.app, email="bob@example.com", phone="+21620123456")
    body = {"card_id": card.pk, "phone": "20123456", "purchase_amount": 50}
    response = post(api, "earn", {**body, **first}, "till-9")
    again = post(api, "earn", {**body, **second}, "till-9")
    assert response.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == response.json()
    assert LedgerEntry.objects.count() == 1


def test_the_same_key_with_another_body_is_409(api, card, member):
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    post(api, "earn", body, "k1")
    response = post(api, "earn", {**body, "purchase_amount": 51}, "k1")
    assert response.status_code == 409
    assert response.json() == error("idempotency_key_reused")
    assert LedgerEntry.objects.count() == 1


def test_the_same_key_on_another_endpoint_is_409(api, merchant, card, member, member_token):
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    post(api, "redeem", {"card_id": card.pk, "amount": 1}, "k2", **{"X-Member-Token": member_token})
    response = post(
        api, "earn", {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 1}, "k2"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_a_business_error_is_kept_and_replayed_even_after_a_top_up(
    api, merchant, card, member, member_token
):
    body = {"card_id": card.pk, "amount": 3}
    headers = {"X-Member-Token": member_token}
    first = post(api, "redeem", body, "redeem-1", **headers)
    assert first.status_code == 422
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    again = post(api, "redeem", body, "redeem-1", **headers)
    assert again.status_code == 422
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert balance_of(member, card) == Decimal(5)


@pytest.mark.parametrize(
    ("body", "status"),
    [({"purchase_amount": "abc"}, 400), ({"purchase_amount": "10.0001"}, 400)],
)
def test_a_refused_request_keeps_nothing(api, card, member, body, status):
    full = {"card_id": card.pk, "member_id": member.pk, **body}
    assert post(api, "earn", full, "k3").status_code == status
    assert IdempotencyRecord.objects.count() == 0
    fixed = post(api, "earn", {**full, "purchase_amount": 50}, "k3")
    assert fixed.status_code == 200
    assert "Idempotent-Replayed" not in fixed


def test_a_wrong_pin_keeps_nothing(api, merchant, card, member, member_token):
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    member_pin_set(member=member, pin="1234")
    headers = {"X-Member-Token": member_token}
    wrong = post(api, "redeem", {"card_id": card.pk, "amount": 1, "pin": "0000"}, "k4", **headers)
    assert wrong.status_code == 403
    assert IdempotencyRecord.objects.count() == 0


def test_unauthenticated_and_unscoped_requests_keep_nothing(client, make_merchant, card, member):
    reader = make_merchant(scopes=["cashback_read"])
    response = reader.client.post(
        f"{API}/earn",
        {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50},
        headers={"Idempotency-Key": "k5"},
    )
    assert response.status_code == 403
    assert IdempotencyRecord.objects.count() == 0


def test_keys_of_one_app_never_see_another_apps_results(api, card, member, other_merchant):
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    assert post(api, "earn", body, "shared-key").status_code == 200
    response = other_merchant.client.post(
        f"{API}/earn", body, headers={"Idempotency-Key": "shared-key"}
    )
    assert response.status_code == 404  # their own run: the card is not theirs
    assert "Idempotent-Replayed" not in response


def test_a_key_must_have_1_to_255_characters(api, card, member):
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    for key in ("", "k" * 256):
        response = post(api, "earn", body, key)
        assert response.status_code == 400
        assert list(response.json()["error"]["details"]) == ["Idempotency-Key"]
    assert counts()[2] == 0


def test_a_running_first_request_answers_409_request_in_progress(api, merchant, card, member):
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    IdempotencyRecord.objects.create(
        app=merchant.app,
        key="busy",
        request_fingerprint=request_fingerprint(
            method="POST", path=f"{API}/earn", body=body, subject=None
        ),
        state=IdempotencyRecord.IN_PROGRESS,
        lease_until=timezone.now() + timedelta(seconds=30),
    )
    response = post(api, "earn", body, "busy")
    assert response.status_code == 409
    assert response.json() == error("request_in_progress")
    assert LedgerEntry.objects.count() == 0


def test_a_first_request_that_died_after_committing_is_replayed_not_rerun(
    api, merchant, card, member
):
    """The worker committed the entry, then died before keeping the response."""
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    first = post(api, "earn", body, "crash-1")
    record = IdempotencyRecord.objects.get(key="crash-1")
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.IN_PROGRESS,
        response_body="",
        response_status=None,
        lease_until=timezone.now() - timedelta(seconds=1),
    )
    again = post(api, "earn", body, "crash-1")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert LedgerEntry.objects.count() == 1


def test_a_key_past_its_retention_is_new_again(api, card, member):
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    post(api, "earn", body, "old-key")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = post(api, "earn", body, "old-key")
    assert again.status_code == 200
    assert "Idempotent-Replayed" not in again
    assert LedgerEntry.objects.count() == 2


def test_purge_idempotency_keys_deletes_only_expired_keys(api, card, member):
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    post(api, "earn", body, "old")
    post(api, "earn", {**body, "purchase_amount": 60}, "fresh")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    out = StringIO()
    call_command("purge_idempotency_keys", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"deleted": 1}
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
    assert LedgerEntry.objects.count() == 2  # the ledger keeps its entries


def test_a_retry_refused_after_taking_over_a_committed_key_still_never_runs_twice(
    api, merchant, card, member
):
    """The first redeem committed, then its worker died; a retry with a wrong PIN is refused,
    and the next retry replays the first entry instead of debiting again."""
    from members.tokens import member_token_issue

    give_balance(app=merchant.app, card=card, member=member, purchase="200")  # 10.000
    member_pin_set(member=member, pin="1234")
    token = member_token_issue(app=merchant.app, member_id=member.pk).token
    headers = {"X-Member-Token": token}
    body = {"card_id": card.pk, "amount": 1, "pin": "1234"}
    first = post(api, "redeem", body, "crash-2", **headers)
    assert first.status_code == 200
    IdempotencyRecord.objects.filter(key="crash-2").update(
        state=IdempotencyRecord.IN_PROGRESS,
        response_body="",
        response_status=None,
        lease_until=timezone.now() - timedelta(seconds=1),
    )
    member_pin_set(member=member, pin="9999")  # the PIN changed meanwhile
    refused = post(api, "redeem", body, "crash-2", **headers)
    assert refused.status_code == 403
    assert IdempotencyRecord.objects.filter(key="crash-2").exists()
    member_pin_set(member=member, pin="1234")
    IdempotencyRecord.objects.filter(key="crash-2").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    again = post(api, "redeem", body, "crash-2", **headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert LedgerEntry.objects.filter(entry_type="redemption").count() == 1
    assert balance_of(member, card) == Decimal(9)


def test_one_key_with_another_members_token_is_409(api, merchant, card, member):
    from members.tokens import member_token_issue
    from tests.factories import MemberFactory

    other = MemberFactory.create(app=merchant.app)
    for someone in (member, other):
        give_balance(app=merchant.app, card=card, member=someone, purchase="100")
    body = {"card_id": card.pk, "amount": 1}
    mine = member_token_issue(app=merchant.app, member_id=member.pk).token
    theirs = member_token_issue(app=merchant.app, member_id=other.pk).token
    assert post(api, "redeem", body, "k-m", **{"X-Member-Token": mine}).status_code == 200
    response = post(api, "redeem", body, "k-m", **{"X-Member-Token": theirs})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert balance_of(other, card) == Decimal(5)


def test_a_bad_member_token_keeps_no_key(api, card):
    response = post(
        api, "redeem", {"card_id": card.pk, "amount": 1}, "k-t", **{"X-Member-Token": "x"}
    )
    assert response.status_code == 401
    assert IdempotencyRecord.objects.count() == 0

"""How an earn names its member: by id, else by email and phone together; it says whether it
created the member, and refuses an email and a phone of two different members."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from cashback.models import LedgerEntry
from members.models import Member
from tests.factories import MemberFactory
from tests.helpers import balance_of, concurrently, counts, error

EARN = "/api/v1/cashback/cashback/earn"


def earn(api, card, **fields):
    return api.post(EARN, {"card_id": card.pk, "purchase_amount": 100, **fields})


def test_an_unknown_email_and_phone_create_one_member_with_both_and_say_so(api, card):
    response = earn(api, card, email="Nour@Example.com", phone="20 123 456", member_name="Nour")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["member_created"] is True
    member = Member.objects.get()
    assert (member.pk, member.email, str(member.phone), member.name) == (
        data["member_id"],
        "nour@example.com",
        "+21620123456",
        "Nour",
    )
    again = earn(api, card, email="nour@example.com", phone="+21620123456")
    assert again.json()["data"]["member_created"] is False
    assert again.json()["data"]["member_id"] == member.pk
    assert Member.objects.count() == 1


def test_a_known_phone_with_a_new_email_earns_for_the_phone_s_member(api, merchant, card):
    known = MemberFactory.create(app=merchant.app, email="old@example.com", phone="+21620123456")
    response = earn(api, card, email="new@example.com", phone="20 123 456")
    assert response.status_code == 200
    assert response.json()["data"]["member_id"] == known.pk
    assert response.json()["data"]["member_created"] is False
    assert Member.objects.count() == 1
    known.refresh_from_db()
    assert known.email == "old@example.com"  # an earn never rewrites a member
    assert balance_of(known, card) == Decimal(5)


def test_a_known_email_with_a_new_phone_earns_for_the_email_s_member(api, merchant, card):
    known = MemberFactory.create(app=merchant.app, email="amira@example.com", phone=None)
    response = earn(api, card, email="AMIRA@example.com", phone="+21698765432")
    assert response.json()["data"]["member_id"] == known.pk
    assert Member.objects.count() == 1


def test_an_email_and_a_phone_of_two_members_is_409_and_changes_nothing(api, merchant, card):
    by_email = MemberFactory.create(app=merchant.app, email="a@example.com", phone=None)
    by_phone = MemberFactory.create(app=merchant.app, email=None, phone="+21620123456")
    before = counts()
    response = earn(api, card, email="a@example.com", phone="20123456")
    assert response.status_code == 409
    assert response.json() == error(
        "member_conflict",
        details={"email_member_id": by_email.pk, "phone_member_id": by_phone.pk},
    )
    assert counts() == before
    # A refund naming both is refused alike; by member_id the till settles which one it means.
    refund = api.post(
        "/api/v1/cashback/cashback/refund",
        {"card_id": card.pk, "email": "a@example.com", "phone": "20123456", "refund_amount": 1},
    )
    assert refund.status_code == 409
    assert refund.json()["error"]["code"] == "member_conflict"
    assert earn(api, card, member_id=by_phone.pk, email="a@example.com").status_code == 200


def test_a_replayed_creating_earn_still_says_it_created_the_member(api, card):
    body = {"email": "sami@example.com", "reference": "ORDER-9"}
    first = earn(api, card, **body)
    assert first.json()["data"]["member_created"] is True
    replay = earn(api, card, **body)
    assert replay.json() == first.json()
    keyed = {"Idempotency-Key": "till-1"}
    first_keyed = api.post(
        EARN,
        {"card_id": card.pk, "purchase_amount": 10, "email": "lina@example.com"},
        headers=keyed,
    )
    assert first_keyed.json()["data"]["member_created"] is True
    replay_keyed = api.post(
        EARN,
        {"card_id": card.pk, "purchase_amount": 10, "email": "Lina@Example.com"},
        headers=keyed,
    )
    assert replay_keyed["Idempotent-Replayed"] == "true"
    assert replay_keyed.json() == first_keyed.json()
    assert LedgerEntry.objects.filter(member_created=True).count() == 2


@pytest.mark.django_db(transaction=True)
def test_earns_racing_for_one_new_member_create_it_once(merchant, card):
    def request(i):
        client = APIClient(headers={"X-App-Id": merchant.app.app_id, "X-Api-Key": merchant.api_key})
        body = {"card_id": card.pk, "purchase_amount": 100, "email": "race@example.com"}
        return client.post(EARN, {**body, "phone": "20123456"}, format="json")

    responses = concurrently(6, request)
    assert [r.status_code for r in responses] == [200] * 6
    assert Member.objects.count() == 1
    assert sum(r.json()["data"]["member_created"] for r in responses) == 1
    assert balance_of(Member.objects.get(), card) == Decimal(30)

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.utils.dateparse import parse_datetime

from members.models import Member
from members.services import member_pin_set
from members.tokens import member_token_issue
from tests.helpers import IsoTimestamp, error

PIN = "/api/v1/cashback/members/pin"


@pytest.fixture
def as_member(api, member_token):
    def post(body):
        return api.post(PIN, body, headers={"X-Member-Token": member_token})

    return post


def test_a_member_sets_a_pin_and_it_is_stored_hashed(as_member, member):
    response = as_member({"pin": "4321"})
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "data": {"member_id": member.pk, "pin_set": True, "changed_at": IsoTimestamp()},
    }
    # The answer is exactly the above: the PIN is not in it (a search of the body for the four
    # digits would find them in the timestamp's microseconds now and then).
    member.refresh_from_db()
    hasher = identify_hasher(member.pin_hash)  # raises unless a password hasher wrote it
    assert hasher.decode(member.pin_hash)["hash"] != "4321"
    assert member.pin_matches("4321")


def test_changing_a_pin_needs_the_current_one(as_member, member):
    member_pin_set(member=member, pin="1111")
    missing = as_member({"pin": "2222"})
    assert missing.status_code == 400
    assert missing.json() == error(
        "validation_error", details={"current_pin": ["Required to change the PIN."]}
    )
    wrong = as_member({"pin": "2222", "current_pin": "9999"})
    assert wrong.status_code == 403
    assert wrong.json() == error("invalid_pin", details={"attempts_left": 4})
    assert as_member({"pin": "2222", "current_pin": "1111"}).status_code == 200
    member.refresh_from_db()
    assert member.pin_matches("2222")


def test_five_wrong_current_pins_lock_the_pin(as_member, member):
    member_pin_set(member=member, pin="1111")
    for _ in range(5):
        assert as_member({"pin": "2222", "current_pin": "0000"}).status_code == 403
    locked = as_member({"pin": "2222", "current_pin": "1111"})
    assert locked.status_code == 423
    member.refresh_from_db()
    assert locked.json() == error("pin_locked", details={"locked_until": IsoTimestamp()})
    assert parse_datetime(locked.json()["error"]["details"]["locked_until"]) == (
        member.pin_locked_until
    )
    assert 890 < int(locked["Retry-After"]) <= 900
    assert member.pin_matches("1111")


def test_pin_needs_a_member_token_of_this_app(api, other_merchant, member):
    assert api.post(PIN, {"pin": "1234"}).status_code == 401
    foreign = member_token_issue(app=other_merchant.app, member_id=member.pk).token
    response = api.post(PIN, {"pin": "1234"}, headers={"X-Member-Token": foreign})
    assert response.status_code == 401
    assert not Member.objects.get(pk=member.pk).has_pin


@pytest.mark.parametrize("pin", ["123", "1234567", "12a4", 1234, "", None])
def test_a_malformed_pin_is_400(as_member, pin):
    response = as_member({"pin": pin})
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["pin"]

"""What an Idempotency-Key keeps gives no secret away: a request's fingerprint is keyed with a
server secret, so the PIN or one-time code in it cannot be searched out, yet a key reused with
another PIN or code is another request (409); and a replayed OTP verify answers the same member
token without any token being stored."""

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps_auth.models import IdempotencyRecord
from core.fingerprint import digest
from members.models import OtpChallenge
from members.services import member_pin_set
from tests.helpers import give_balance

API = "/api/v1/cashback"
REDEEM = f"{API}/cashback/redeem"
PIN = f"{API}/members/pin"


def unkeyed_fingerprints(*, path, body, subject, field):
    """What the fingerprint of each of the 10,000 four-digit PINs would be, were it a plain
    SHA-256 of the request: the search that recovered a PIN from the database."""
    for n in range(10_000):
        guess = {**body, field: f"{n:04d}"}
        value = {"method": "POST", "path": path, "body": guess, "subject": subject}
        yield digest(value)


def test_a_redeem_fingerprint_does_not_give_the_pin_away(api, merchant, card, member, member_token):
    card.allows_pin_redemption = True
    card.save()
    member_pin_set(member=member, pin="4821")
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    body = {"card_id": card.pk, "amount": "1.000", "pin": "4821"}
    response = api.post(
        REDEEM, body, headers={"X-Member-Token": member_token, "Idempotency-Key": "r-1"}
    )
    assert response.status_code == 200, response.content

    stored = IdempotencyRecord.objects.get(key="r-1").request_fingerprint
    guesses = set(unkeyed_fingerprints(path=REDEEM, body=body, subject=member.pk, field="pin"))
    assert stored not in guesses
    # Nor the fingerprint of the body without the PIN, unkeyed.
    public = {k: v for k, v in body.items() if k != "pin"}
    assert stored != digest(
        {"method": "POST", "path": REDEEM, "body": public, "subject": member.pk}
    )

    replay = api.post(
        REDEEM, body, headers={"X-Member-Token": member_token, "Idempotency-Key": "r-1"}
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == response.json()


def test_a_pin_change_fingerprint_does_not_give_either_pin_away(api, member, member_token):
    member_pin_set(member=member, pin="1111")
    body = {"pin": "4821", "current_pin": "1111"}
    headers = {"X-Member-Token": member_token, "Idempotency-Key": "p-1"}
    assert api.post(PIN, body, headers=headers).status_code == 200

    stored = IdempotencyRecord.objects.get(key="p-1").request_fingerprint
    for field in ("pin", "current_pin"):
        guesses = set(unkeyed_fingerprints(path=PIN, body=body, subject=member.pk, field=field))
        assert stored not in guesses, field
    assert api.post(PIN, body, headers=headers).headers["Idempotent-Replayed"] == "true"


@pytest.fixture
def verified(api, merchant, member):
    """An OTP verify under an Idempotency-Key: its first answer and the code it used (the test
    app's code, given in the request's answer)."""
    member.email = "amira@example.com"
    member.save()
    requested = api.post(f"{API}/auth/otp/request", {"member_id": member.pk})
    assert requested.status_code == 200
    code = requested.json()["data"]["test_code"]
    body = {"challenge_id": OtpChallenge.objects.get().challenge_id, "code": code}
    first = api.post(f"{API}/auth/otp/verify", body, headers={"Idempotency-Key": "v-1"})
    assert first.status_code == 200, first.content
    return body, first


def test_a_verified_member_token_is_not_stored(verified):
    body, first = verified
    token = first.json()["data"]["member_token"]
    record = IdempotencyRecord.objects.get(key="v-1")
    header, payload, signature = token.split(".")
    assert signature not in record.response_body
    assert token not in record.response_body
    assert body["code"] not in record.response_body
    stored = IdempotencyRecord.objects.get(key="v-1").request_fingerprint
    code_free = {"challenge_id": body["challenge_id"]}
    for n in (0, int(body["code"]), 999_999):
        guess = {**code_free, "code": f"{n:06d}"}
        value = {"method": "POST", "path": f"{API}/auth/otp/verify", "body": guess, "subject": None}
        assert stored != digest(value)


def test_a_replayed_verify_answers_the_same_working_token(api, merchant, card, member, verified):
    body, first = verified
    replay = api.post(f"{API}/auth/otp/verify", body, headers={"Idempotency-Key": "v-1"})
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()

    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    token = replay.json()["data"]["member_token"]
    spend = api.post(
        REDEEM, {"card_id": card.pk, "amount": "1.000"}, headers={"X-Member-Token": token}
    )
    assert spend.status_code == 200, spend.content


@pytest.mark.django_db(transaction=True)
def test_keys_taken_before_the_upgrade_still_replay(merchant, card, member):
    """Records kept with the plain SHA-256 fingerprint are re-keyed by the migration: a retry of
    an earn sent before the upgrade replays after it."""
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "50.000"}
    first = merchant.client.post(f"{API}/cashback/earn", body, headers={"Idempotency-Key": "old-1"})
    assert first.status_code == 200
    plain = digest(
        {
            "method": "POST",
            "path": f"{API}/cashback/earn",
            "body": json.loads(json.dumps(body)),
            "subject": None,
        }
    )
    executor = MigrationExecutor(connection)
    executor.migrate([("apps_auth", "0004_otpchallenge_moves_to_members")])
    try:
        IdempotencyRecord.objects.filter(key="old-1").update(request_fingerprint=plain)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert IdempotencyRecord.objects.get(key="old-1").request_fingerprint != plain
    retry = merchant.client.post(f"{API}/cashback/earn", body, headers={"Idempotency-Key": "old-1"})
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()


def test_a_key_reused_with_another_code_is_409_and_gives_no_token(api, verified):
    body, first = verified
    wrong = {**body, "code": f"{(int(body['code']) + 1) % 10**6:06d}"}
    again = api.post(f"{API}/auth/otp/verify", wrong, headers={"Idempotency-Key": "v-1"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "idempotency_key_reused"
    assert "member_token" not in again.content.decode()


def test_a_key_reused_with_another_pin_is_409_and_changes_nothing(api, member, member_token):
    member_pin_set(member=member, pin="1111")
    headers = {"X-Member-Token": member_token, "Idempotency-Key": "p-2"}
    assert api.post(PIN, {"pin": "4821", "current_pin": "1111"}, headers=headers).status_code == 200
    other = api.post(PIN, {"pin": "9999", "current_pin": "0000"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    member.refresh_from_db()
    assert member.pin_matches("4821")

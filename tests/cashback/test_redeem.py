from datetime import timedelta
from decimal import Decimal

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cashback.models import LedgerEntry
from members.models import Member
from members.services import member_pin_set
from members.tokens import member_token_issue
from tests.factories import CardFactory, MemberFactory
from tests.helpers import IsoTimestamp, balance_of, counts, error, give_balance

REDEEM = "/api/v1/cashback/cashback/redeem"


@pytest.fixture
def funded(merchant, card, member):
    give_balance(app=merchant.app, card=card, member=member, purchase="250")  # 12.500
    return card


def redeem(api, token, body):
    return api.post(REDEEM, body, headers={"X-Member-Token": token})


def test_redeem_debits_the_wallet_and_answers_the_reference_shape(
    api, funded, member, member_token
):
    response = redeem(api, member_token, {"card_id": funded.pk, "amount": 5, "reference": "R-1"})
    assert response.status_code == 200
    entry = LedgerEntry.objects.get(entry_type="redemption")
    assert response.json() == {
        "success": True,
        "data": {
            "transaction_id": entry.pk,
            "amount_redeemed": 5,
            "previous_balance": 12.5,
            "new_balance": 7.5,
            "currency": "TND",
            "member_id": member.pk,
            "card_id": funded.pk,
            "reference": "R-1",
            "redeemed_at": IsoTimestamp(),
        },
    }
    assert entry.amount == Decimal(-5)
    assert entry.event == "cashback_redeemed"
    assert balance_of(member, funded) == Decimal("7.5")


def test_redeem_of_the_whole_balance_leaves_zero(api, funded, member, member_token):
    assert redeem(api, member_token, {"card_id": funded.pk, "amount": "12.500"}).status_code == 200
    assert balance_of(member, funded) == 0


def test_redeem_more_than_balance_changes_nothing(api, funded, member, member_token):
    before = counts()
    response = redeem(api, member_token, {"card_id": funded.pk, "amount": "12.501"})
    assert response.status_code == 422
    assert response.json() == error(
        "insufficient_balance", details={"balance": 12.5, "amount": 12.501}
    )
    assert counts() == before
    assert balance_of(member, funded) == Decimal("12.5")


def test_redeem_without_a_member_token_is_401_saying_it_is_missing(api, funded):
    response = api.post(REDEEM, {"card_id": funded.pk, "amount": 1})
    assert response.status_code == 401
    assert response.json() == error(
        "authentication_failed",
        "A member token is required: X-Member-Token or Authorization: Bearer.",
        {"reason": "member_token_missing"},
    )


def test_redeem_with_an_expired_token_is_401(api, merchant, funded, member):
    token = member_token_issue(app=merchant.app, member_id=member.pk, ttl_seconds=-1).token
    response = redeem(api, token, {"card_id": funded.pk, "amount": 1})
    assert response.status_code == 401
    assert response.json() == error(
        "authentication_failed",
        "The member token has expired; sign the member in again.",
        {"reason": "member_token_expired"},
    )


def test_redeem_with_a_forged_token_is_401(api, merchant, funded, member):
    now = timezone.now()
    claims = {
        "iss": settings.MEMBER_TOKEN_ISSUER,
        "aud": merchant.app.app_id,
        "sub": str(member.pk),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": "x",
    }
    forged = jwt.encode(claims, "not-the-signing-key-but-long-enough-for-hs256", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (forged, unsigned, "garbage"):
        response = redeem(api, token, {"card_id": funded.pk, "amount": 1})
        assert response.status_code == 401
        assert response.json() == error(
            "authentication_failed", details={"reason": "member_token_invalid"}
        )


def test_redeem_with_another_apps_token_is_401(api, funded, other_merchant):
    stranger = MemberFactory.create(app=other_merchant.app)
    token = member_token_issue(app=other_merchant.app, member_id=stranger.pk).token
    response = redeem(api, token, {"card_id": funded.pk, "amount": 1})
    assert response.status_code == 401


def test_redeem_for_another_member_in_the_body_is_403(api, funded, member, member_token):
    response = redeem(
        api, member_token, {"card_id": funded.pk, "amount": 1, "member_id": member.pk + 1}
    )
    assert response.status_code == 403
    assert response.json() == error("permission_denied")


def test_redeem_with_the_tokens_member_id_in_the_body_is_fine(api, funded, member, member_token):
    response = redeem(
        api, member_token, {"card_id": funded.pk, "amount": 1, "member_id": member.pk}
    )
    assert response.status_code == 200


def test_redeem_with_the_right_pin(api, funded, member, member_token):
    member_pin_set(member=member, pin="1234")
    response = redeem(api, member_token, {"card_id": funded.pk, "amount": 1, "pin": "1234"})
    assert response.status_code == 200


def test_redeem_with_a_pin_on_a_card_without_pin_redemption_is_400(
    api, merchant, member, member_token
):
    card = CardFactory.create(app=merchant.app, allows_pin_redemption=False)
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    member_pin_set(member=member, pin="1234")
    response = redeem(api, member_token, {"card_id": card.pk, "amount": 1, "pin": "1234"})
    assert response.status_code == 400
    assert response.json() == error("pin_not_allowed")


def test_redeem_with_a_pin_when_none_is_set_is_400(api, funded, member_token):
    response = redeem(api, member_token, {"card_id": funded.pk, "amount": 1, "pin": "1234"})
    assert response.status_code == 400
    assert response.json() == error("pin_not_set")


def test_five_wrong_pins_lock_the_pin_even_for_the_right_one(api, funded, member, member_token):
    member_pin_set(member=member, pin="1234")
    for attempts_left in (4, 3, 2, 1, 0):
        response = redeem(api, member_token, {"card_id": funded.pk, "amount": 1, "pin": "9999"})
        assert response.status_code == 403
        assert response.json() == error("invalid_pin", details={"attempts_left": attempts_left})
    member.refresh_from_db()
    locked = error("pin_locked", details={"locked_until": IsoTimestamp()})
    # While locked, no redeem of the member goes through: with the right PIN, or with none.
    for body in ({"pin": "1234"}, {}):
        response = redeem(api, member_token, {"card_id": funded.pk, "amount": 1, **body})
        assert response.status_code == 423
        assert response.json() == locked
        until = parse_datetime(response.json()["error"]["details"]["locked_until"])
        assert until == member.pin_locked_until
        assert 890 < int(response["Retry-After"]) <= 900
    assert balance_of(member, funded) == Decimal("12.5")
    Member.objects.filter(pk=member.pk).update(pin_locked_until=timezone.now())
    response = redeem(api, member_token, {"card_id": funded.pk, "amount": 1})
    assert response.status_code == 200
    assert balance_of(member, funded) == Decimal("11.5")


def test_a_right_pin_resets_the_miss_count(api, funded, member, member_token):
    member_pin_set(member=member, pin="1234")
    for _ in range(4):
        redeem(api, member_token, {"card_id": funded.pk, "amount": 1, "pin": "0000"})
    ok = redeem(api, member_token, {"card_id": funded.pk, "amount": 1, "pin": "1234"})
    assert ok.status_code == 200
    response = redeem(api, member_token, {"card_id": funded.pk, "amount": 1, "pin": "0000"})
    assert response.json()["error"]["details"] == {"attempts_left": 4}


def test_redeem_on_an_inactive_card_is_422(api, merchant, funded, member, member_token):
    funded.is_active = False
    funded.save()
    response = redeem(api, member_token, {"card_id": funded.pk, "amount": 1})
    assert response.status_code == 422
    assert response.json() == error("card_inactive")


def test_redeem_with_too_many_decimals_is_400(api, funded, member_token):
    response = redeem(api, member_token, {"card_id": funded.pk, "amount": "1.0001"})
    assert response.status_code == 400
    assert response.json() == error(
        "validation_error", details={"amount": ["At most 3 decimal places for TND."]}
    )


def test_redeem_on_a_card_without_a_wallet_is_insufficient(api, merchant, member, member_token):
    card = CardFactory.create(app=merchant.app)
    response = redeem(api, member_token, {"card_id": card.pk, "amount": 1})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "insufficient_balance"


def test_the_member_token_may_come_as_a_bearer_token(api, funded, member, member_token):
    body = {"card_id": funded.pk, "amount": 1}
    bearer = {"Authorization": f"Bearer {member_token}"}
    assert api.post(REDEEM, body, headers=bearer).status_code == 200
    both = {**bearer, "X-Member-Token": member_token}
    assert api.post(REDEEM, body, headers=both).status_code == 200
    assert balance_of(member, funded) == Decimal("10.5")


def test_two_different_member_tokens_are_400_and_redeem_nothing(
    api, merchant, funded, member, member_token
):
    other = member_token_issue(app=merchant.app, member_id=member.pk).token
    response = api.post(
        REDEEM,
        {"card_id": funded.pk, "amount": 1},
        headers={"Authorization": f"Bearer {other}", "X-Member-Token": member_token},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert balance_of(member, funded) == Decimal("12.5")


def test_a_redeem_refused_by_the_pin_lock_runs_when_retried_with_its_key_after_it(
    api, funded, member, member_token
):
    Member.objects.filter(pk=member.pk).update(
        pin_locked_until=timezone.now() + timedelta(minutes=15)
    )
    headers = {"X-Member-Token": member_token, "Idempotency-Key": "till-3-77"}
    body = {"card_id": funded.pk, "amount": 2}
    locked = api.post(REDEEM, body, headers=headers)
    assert locked.status_code == 423
    assert "Idempotent-Replayed" not in locked
    Member.objects.filter(pk=member.pk).update(pin_locked_until=None)
    retried = api.post(REDEEM, body, headers=headers)
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried
    assert balance_of(member, funded) == Decimal("10.5")

from decimal import Decimal

from tests.factories import CardFactory, MemberFactory
from tests.helpers import IsoTimestamp, error, give_balance

BALANCE = "/api/v1/cashback/cashback/balance"


def test_balance_answers_the_reference_shape(api, merchant, card, member):
    give_balance(app=merchant.app, card=card, member=member, purchase="250")
    response = api.get(BALANCE, {"card_id": card.pk, "member_id": member.pk})
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "data": {
            "card_id": card.pk,
            "member_id": member.pk,
            "cashback_balance": 12.5,
            "pending_balance": 0,
            "next_expiry": None,
            "upcoming_expiries": [],
            "cashback_percentage": 5,
            "reward_system": "cashback",
            "currency": "TND",
            "queried_at": IsoTimestamp(),
            "tier": None,
        },
    }
    assert b'"cashback_balance":12.500' in response.content


def test_balance_of_a_member_without_activity_is_zero(api, card, member):
    response = api.get(BALANCE, {"card_id": card.pk, "member_id": member.pk})
    assert response.json()["data"]["cashback_balance"] == 0
    assert b'"cashback_balance":0.000' in response.content


def test_balance_is_per_card(api, merchant, card, member):
    other = CardFactory.create(app=merchant.app, cashback_percentage=Decimal(10))
    give_balance(app=merchant.app, card=other, member=member, purchase="100")
    response = api.get(BALANCE, {"card_id": card.pk, "member_id": member.pk})
    assert response.json()["data"]["cashback_balance"] == 0


def test_balance_of_an_unknown_member_or_card_is_404(api, card, member):
    response = api.get(BALANCE, {"card_id": card.pk, "member_id": member.pk + 1000})
    assert response.status_code == 404
    assert response.json() == error("not_found", "Member not found.")
    response = api.get(BALANCE, {"card_id": card.pk + 1000, "member_id": member.pk})
    assert response.status_code == 404
    assert response.json() == error("not_found", "Card not found.")


def test_balance_needs_card_and_member(api, card):
    response = api.get(BALANCE)
    assert response.status_code == 400
    assert response.json() == error(
        "validation_error", details={"card_id": ["This field is required."]}
    )
    response = api.get(BALANCE, {"card_id": card.pk})
    assert response.status_code == 400
    assert response.json() == error(
        "validation_error", details={"member_id": ["Give member_id, email or phone."]}
    )


def test_balance_with_ids_out_of_range_is_400(api):
    response = api.get(BALANCE, {"card_id": "99999999999999999999", "member_id": "-1"})
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"card_id", "member_id"}


def test_balance_of_another_apps_member_is_404(api, card, other_merchant):
    stranger = MemberFactory.create(app=other_merchant.app)
    response = api.get(BALANCE, {"card_id": card.pk, "member_id": stranger.pk})
    assert response.status_code == 404

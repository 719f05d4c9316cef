from decimal import Decimal

from tests.factories import CardFactory
from tests.helpers import error

CARDS = "/api/v1/cashback/cards"


def card_body(card, **overrides):
    body = {
        "id": card.pk,
        "unique_identifier": card.unique_identifier,
        "name": card.name,
        "description": "5% cashback on all purchases",
        "reward_system": "cashback",
        "cashback_config": {
            "cashback_percentage": 5,
            "cashback_min_amount": 10,
            "cashback_max_amount": 1000,
            "allows_pin_redemption": True,
            "cashback_holding_days": 0,
            "cashback_expiry_days": None,
            "cashback_expiry_policy": "rolling",
            "cashback_expiry_date": None,
            "cashback_inactivity_days": None,
            "tier_period_days": 365,
            "tier_retention_days": 365,
            "time_zone": "Africa/Tunis",
        },
        "currency": "TND",
        "is_active": True,
    }
    body.update(overrides)
    return body


def test_cards_list_shows_the_apps_active_cards(api, merchant, other_merchant):
    card = CardFactory.create(app=merchant.app)
    CardFactory.create(app=merchant.app, is_active=False)
    CardFactory.create(app=other_merchant.app)
    response = api.get(CARDS)
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"cards": [card_body(card)], "total": 1}}
    assert b'"cashback_min_amount":10.000' in response.content


def test_cards_list_shows_no_cap_as_null(api, merchant):
    card = CardFactory.create(
        app=merchant.app, cashback_max_amount=None, cashback_percentage=Decimal("2.5")
    )
    config = api.get(CARDS).json()["data"]["cards"][0]["cashback_config"]
    assert card.pk
    assert config["cashback_max_amount"] is None
    assert config["cashback_percentage"] == 2.5


def test_card_detail_has_the_list_item_shape(api, merchant):
    card = CardFactory.create(app=merchant.app)
    response = api.get(f"{CARDS}/{card.pk}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": card_body(card)}


def test_card_detail_of_another_app_is_404(api, other_merchant):
    card = CardFactory.create(app=other_merchant.app)
    response = api.get(f"{CARDS}/{card.pk}")
    assert response.status_code == 404
    assert response.json() == error("not_found", "Card not found.")


def test_card_detail_with_a_huge_or_bad_id_is_404(api):
    for card_id in ("99999999999999999999999", "abc", "0"):
        response = api.get(f"{CARDS}/{card_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

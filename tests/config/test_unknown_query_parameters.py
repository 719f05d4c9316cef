"""An unknown query parameter on any GET is `400 validation_error` naming it: a misspelt filter
never silently returns every row."""

import pytest

from tests.helpers import error

API = "/api/v1/cashback"


@pytest.fixture
def gets(card, member):
    """Every GET of the API, with its real parameters."""
    ref = {"card_id": card.pk, "member_id": member.pk}
    return {
        "balance": (f"{API}/cashback/balance", ref),
        "history": (f"{API}/cashback/history", {**ref, "type": "earning", "limit": 5}),
        "lookup": (f"{API}/members", {"email": member.email}),
        "cards": (f"{API}/cards", {}),
        "card": (f"{API}/cards/{card.pk}", {}),
        "webhooks": (f"{API}/webhooks", {}),
    }


@pytest.mark.parametrize("name", ["balance", "history", "lookup", "cards", "card", "webhooks"])
def test_an_unknown_query_parameter_is_400_naming_it(make_merchant, gets, name, card, member):
    merchant = make_merchant(scopes=["cashback_read", "card_read", "webhooks"])
    card.app, member.app = merchant.app, merchant.app
    card.save()
    member.save()
    path, params = gets[name]
    assert merchant.client.get(path, params).status_code == 200
    response = merchant.client.get(path, {**params, "reference": "PROBE-1"})
    assert response.status_code == 400
    assert response.json() == error("validation_error", details={"reference": ["Unknown field."]})

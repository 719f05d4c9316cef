"""Bad input answers 400 in the envelope and records nothing."""

import json

import pytest

from tests.helpers import balance_of, counts, error, give_balance

API = "/api/v1/cashback/cashback"


@pytest.fixture
def funded(merchant, card, member):
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    return card


@pytest.mark.parametrize(
    "purchase_amount",
    [0, -1, "abc", "10.0001", "", True, None, [50], {"value": 50}, "1e3", " ", "1_000", "NaN"],
)
def test_earn_refuses_a_bad_purchase_amount_and_records_nothing(
    api, funded, member, purchase_amount
):
    before, balance = counts(), balance_of(member, funded)
    response = api.post(
        f"{API}/earn",
        {"card_id": funded.pk, "member_id": member.pk, "purchase_amount": purchase_amount},
    )
    assert response.status_code == 400
    body = response.json()
    assert body == error("validation_error", details=body["error"]["details"])
    assert list(body["error"]["details"]) == ["purchase_amount"]
    assert counts() == before
    assert balance_of(member, funded) == balance


@pytest.mark.parametrize(
    "raw",
    [
        '{"card_id": 1, "member_id": 1, "purchase_amount": NaN}',
        '{"card_id": 1, "member_id": 1, "purchase_amount": Infinity}',
        '{"card_id": 1, "member_id": 1, "purchase_amount": -Infinity}',
        '{"card_id": 1, "member_id": 1, "purchase_amount": 50',
        "",
        "null",
        '"just a string"',
    ],
)
def test_earn_refuses_malformed_json_and_records_nothing(api, funded, raw):
    before = counts()
    response = api.post(f"{API}/earn", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"parse_error", "validation_error"}
    assert counts() == before


def test_a_huge_number_is_refused(api, funded, member):
    raw = json.dumps({"card_id": funded.pk, "member_id": member.pk}).rstrip("}")
    response = api.post(
        f"{API}/earn", raw + ', "purchase_amount": 1e309}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "purchase_amount": ["Must be at most 1000000000."]
    }


def test_earn_without_card_id_records_nothing(api, funded, member):
    before = counts()
    response = api.post(f"{API}/earn", {"member_id": member.pk, "purchase_amount": 50})
    assert response.status_code == 400
    assert response.json() == error(
        "validation_error", details={"card_id": ["This field is required."]}
    )
    assert counts() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card_id", "abc"),
        ("card_id", 0),
        ("card_id", 2**63),
        ("card_id", 1.5),
        ("card_id", True),
        ("member_id", -3),
        ("email", "not-an-email"),
        ("phone", "12"),
        ("reference", "x" * 256),
        ("metadata", "a string"),
        ("metadata", {"blob": "x" * 17000}),
        ("cashback_earned", 99),
        ("new_balance", 1000),
    ],
)
def test_earn_refuses_bad_fields_and_records_nothing(api, funded, member, field, value):
    body = {"card_id": funded.pk, "member_id": member.pk, "purchase_amount": 50, field: value}
    before = counts()
    response = api.post(f"{API}/earn", body)
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert counts() == before


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("refund", {"refund_amount": 0}),
        ("refund", {"refund_amount": "1.0001"}),
        ("refund", {"refund_amount": 10, "cashback_to_deduct": -1}),
        ("refund", {"refund_amount": 10, "original_transaction_id": "x"}),
    ],
)
def test_refund_refuses_bad_amounts_and_records_nothing(api, funded, member, endpoint, body):
    before = counts()
    response = api.post(f"{API}/{endpoint}", {"card_id": funded.pk, "member_id": member.pk, **body})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert counts() == before


@pytest.mark.parametrize("amount", [0, -1, "abc", "0.0001", None, False, "Infinity"])
def test_redeem_refuses_bad_amounts_and_records_nothing(api, funded, member_token, amount):
    before = counts()
    response = api.post(
        f"{API}/redeem",
        {"card_id": funded.pk, "amount": amount},
        headers={"X-Member-Token": member_token},
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["amount"]
    assert counts() == before


@pytest.mark.parametrize("pin", ["12", "1234567", "abcd", 1234])
def test_redeem_refuses_a_malformed_pin(api, funded, member_token, pin):
    response = api.post(
        f"{API}/redeem",
        {"card_id": funded.pk, "amount": 1, "pin": pin},
        headers={"X-Member-Token": member_token},
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["pin"]

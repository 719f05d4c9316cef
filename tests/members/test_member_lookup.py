"""A till knows a phone or an email, not an id: the member lookup, and balance and history by
email or phone."""

import pytest

from members.models import Member
from tests.factories import MemberFactory
from tests.helpers import IsoTimestamp, error, give_balance

API = "/api/v1/cashback"
MEMBERS = f"{API}/members"


@pytest.fixture
def amira(merchant):
    return MemberFactory.create(
        app=merchant.app, name="Amira", email="amira@example.com", phone="+21620123456"
    )


@pytest.mark.parametrize(
    "query",
    [
        {"email": "Amira@Example.COM"},
        {"phone": "+21620123456"},
        {"phone": "20 123 456"},
        {"phone": "+216 20 123 456"},
    ],
)
def test_the_lookup_finds_the_member_by_email_or_phone_in_any_form(api, amira, query):
    response = api.get(MEMBERS, query)
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "data": {
            "member_id": amira.pk,
            "email": "amira@example.com",
            "phone": "+21620123456",
            "name": "Amira",
            "created_at": IsoTimestamp(),
        },
    }


def test_the_lookup_finds_a_phone_whose_plus_was_not_url_encoded(api, amira):
    """`?phone=+216…` pasted into a URL reaches the server as a space before 216: the number
    still starts with the default region's country code, and is read as that number."""
    for query in ("phone=%2B21620123456", "phone=+21620123456"):
        assert api.get(f"{MEMBERS}?{query}").json()["data"]["member_id"] == amira.pk


def test_an_unknown_member_is_404_and_nothing_is_created(api, amira):
    response = api.get(MEMBERS, {"email": "nobody@example.com"})
    assert response.status_code == 404
    assert response.json() == error("not_found", "Member not found.")
    assert Member.objects.count() == 1


def test_another_apps_member_is_404(api, other_merchant):
    MemberFactory.create(app=other_merchant.app, email="theirs@example.com")
    assert api.get(MEMBERS, {"email": "theirs@example.com"}).status_code == 404


@pytest.mark.parametrize(
    "query",
    [{}, {"email": "amira@example.com", "phone": "20123456"}, {"email": "not-an-email"}],
)
def test_the_lookup_takes_exactly_one_valid_identifier(api, amira, query):
    response = api.get(MEMBERS, query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_the_lookup_needs_the_read_scope(make_merchant, amira):
    writer = make_merchant(scopes=["cashback_write"])
    MemberFactory.create(app=writer.app, email="amira@example.com")
    response = writer.client.get(MEMBERS, {"email": "amira@example.com"})
    assert response.status_code == 403


@pytest.mark.parametrize("ref", [{"email": "AMIRA@example.com"}, {"phone": "20 123 456"}])
def test_balance_and_history_take_an_email_or_a_phone(api, merchant, card, amira, ref):
    give_balance(app=merchant.app, card=card, member=amira, purchase="100")
    balance = api.get(f"{API}/cashback/balance", {"card_id": card.pk, **ref})
    assert balance.status_code == 200
    assert balance.json()["data"]["member_id"] == amira.pk
    assert balance.json()["data"]["cashback_balance"] == 5
    history = api.get(f"{API}/cashback/history", {"card_id": card.pk, **ref})
    assert history.status_code == 200
    assert history.json()["data"]["member_id"] == amira.pk
    assert history.json()["data"]["pagination"]["total"] == 1


def test_balance_of_an_unknown_phone_is_404_and_creates_nobody(api, card, amira):
    response = api.get(f"{API}/cashback/balance", {"card_id": card.pk, "phone": "98 765 432"})
    assert response.status_code == 404
    assert Member.objects.count() == 1

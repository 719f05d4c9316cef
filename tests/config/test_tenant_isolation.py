"""App B's credentials against app A's objects: every endpoint answers 404, as if they did not
exist. (A member token of app A is refused outright, 401, by its audience.)"""

import pytest

from cashback.models import LedgerEntry, Wallet
from members.models import Member, OtpChallenge
from members.otp import otp_request
from members.tokens import member_token_issue
from tests.factories import CardFactory, MemberFactory
from tests.helpers import counts, error, give_balance

API = "/api/v1/cashback"


@pytest.fixture
def world(merchant, other_merchant, card, member, mailoutbox):
    earning = give_balance(app=merchant.app, card=card, member=member, purchase="100")
    challenge = otp_request(app=merchant.app, member=member)
    their_card = CardFactory.create(app=other_merchant.app)
    their_member = MemberFactory.create(app=other_merchant.app)
    give_balance(app=other_merchant.app, card=their_card, member=their_member, purchase="100")
    their_token = member_token_issue(app=other_merchant.app, member_id=their_member.pk).token
    return {
        "card": card.pk,
        "member": member.pk,
        "email": member.email,
        "earning": earning.pk,
        "challenge": challenge.challenge_id,
        "their_card": their_card.pk,
        "their_member": their_member.pk,
        "their_token": their_token,
    }


CASES = [
    ("get", "/cards/{card}", None),
    ("get", "/cashback/balance?card_id={card}&member_id={member}", None),
    ("get", "/cashback/balance?card_id={their_card}&member_id={member}", None),
    ("get", "/cashback/balance?card_id={card}&member_id={their_member}", None),
    ("get", "/cashback/history?card_id={card}&member_id={member}", None),
    ("get", "/cashback/history?card_id={their_card}&member_id={member}", None),
    (
        "post",
        "/cashback/earn",
        {"card_id": "{card}", "member_id": "{their_member}", "purchase_amount": 50},
    ),
    (
        "post",
        "/cashback/earn",
        {"card_id": "{their_card}", "member_id": "{member}", "purchase_amount": 50},
    ),
    ("post", "/cashback/redeem", {"card_id": "{card}", "amount": 1}),
    (
        "post",
        "/cashback/refund",
        {"card_id": "{card}", "member_id": "{their_member}", "refund_amount": 10},
    ),
    (
        "post",
        "/cashback/refund",
        {"card_id": "{their_card}", "member_id": "{member}", "refund_amount": 10},
    ),
    (
        "post",
        "/cashback/refund",
        {"card_id": "{their_card}", "email": "{email}", "refund_amount": 10},
    ),
    (
        "post",
        "/cashback/refund",
        {
            "card_id": "{their_card}",
            "member_id": "{their_member}",
            "refund_amount": 10,
            "original_transaction_id": "{earning}",
        },
    ),
    ("post", "/auth/otp/request", {"member_id": "{member}"}),
    ("post", "/auth/otp/request", {"email": "{email}"}),
    ("post", "/auth/otp/verify", {"challenge_id": "{challenge}", "code": "123456"}),
]


def fill(template, world):
    if isinstance(template, dict):
        return {key: fill(value, world) for key, value in template.items()}
    if isinstance(template, str) and template.startswith("{") and template.endswith("}"):
        return world[template[1:-1]]
    if isinstance(template, str):
        return template.format(**world)
    return template


@pytest.mark.parametrize(("method", "path", "body"), CASES)
def test_another_apps_objects_are_not_found(other_merchant, world, method, path, body):
    before = counts(), OtpChallenge.objects.count(), list(Wallet.objects.values_list("balance"))
    client = other_merchant.client
    headers = {"X-Member-Token": world["their_token"]}
    if method == "get":
        response = client.get(API + fill(path, world), headers=headers)
    else:
        response = client.post(API + fill(path, world), fill(body, world), headers=headers)
    assert response.status_code == 404, response.json()
    assert response.json() == error("not_found")
    after = counts(), OtpChallenge.objects.count(), list(Wallet.objects.values_list("balance"))
    assert after == before


def test_another_apps_cards_are_not_listed(other_merchant, world):
    cards = other_merchant.client.get(f"{API}/cards").json()["data"]["cards"]
    assert [card["id"] for card in cards] == [world["their_card"]]


def test_a_member_token_of_another_app_is_refused(other_merchant, world):
    token = member_token_issue(
        app=Member.objects.get(pk=world["member"]).app, member_id=world["member"]
    ).token
    for path, body in (
        ("/cashback/redeem", {"card_id": world["their_card"], "amount": 1}),
        ("/members/pin", {"pin": "1234"}),
    ):
        response = other_merchant.client.post(API + path, body, headers={"X-Member-Token": token})
        assert response.status_code == 401
    assert LedgerEntry.objects.filter(entry_type="redemption").count() == 0

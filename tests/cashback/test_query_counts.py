"""The hot path's database round trips, counted as production runs them: no test transaction
around the request (so a service's transaction costs no savepoint), throttle counters in the
shared cache (Redis in production), API keys and cards from the in-process caches. BEGIN and
COMMIT count. The budget is 4 for earn by id or by email (recording its webhook event
included), and on a card with earning rules and a budget; 6 with an Idempotency-Key, 5 for an
earn that creates its member, 6 for a member's first earn on a card, 4 for redeem (spending its
lots and recording its event included), 3 for balance and 4 for history; the tests hold the
path to what it takes today, within that."""

from decimal import Decimal

import pytest

from members.tokens import member_token_issue
from tests.factories import CardFactory, MemberFactory, RuleFactory
from tests.helpers import give_balance

API = "/api/v1/cashback/cashback"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("shared_cache_off_the_database"),
]


@pytest.fixture
def warm(merchant):
    """A member with a wallet, and the app's key and the card already in the process's
    cache."""
    card = CardFactory.create(app=merchant.app)
    member = MemberFactory.create(app=merchant.app)
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    merchant.client.get(f"/api/v1/cashback/cards/{card.pk}")
    return merchant.client, card, member


def test_earn_by_member_id_takes_at_most_4_queries(warm, django_assert_max_num_queries):
    client, card, member = warm
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    with django_assert_max_num_queries(4):
        assert client.post(f"{API}/earn", body).status_code == 200


def test_earn_by_email_takes_at_most_4_queries(warm, django_assert_max_num_queries):
    client, card, member = warm
    body = {"card_id": card.pk, "email": member.email, "purchase_amount": 50}
    with django_assert_max_num_queries(4):
        assert client.post(f"{API}/earn", body).status_code == 200


def test_earn_with_an_idempotency_key_takes_at_most_6_queries(warm, django_assert_max_num_queries):
    client, card, member = warm
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    with django_assert_max_num_queries(6):
        response = client.post(f"{API}/earn", body, headers={"Idempotency-Key": "q-1"})
        assert response.status_code == 200


def test_balance_takes_one_query(warm, django_assert_max_num_queries):
    client, card, member = warm
    with django_assert_max_num_queries(1):
        response = client.get(f"{API}/balance", {"card_id": card.pk, "member_id": member.pk})
        assert response.json()["data"]["cashback_balance"] == 5


def test_history_takes_at_most_2_queries(warm, django_assert_max_num_queries):
    client, card, member = warm
    with django_assert_max_num_queries(2):
        response = client.get(f"{API}/history", {"card_id": card.pk, "member_id": member.pk})
        assert response.json()["data"]["pagination"]["total"] == 1


def test_earn_creating_its_member_takes_at_most_5_queries(warm, django_assert_max_num_queries):
    client, card, _ = warm
    body = {"card_id": card.pk, "email": "first-visit@example.com", "purchase_amount": "100"}
    with django_assert_max_num_queries(5):
        response = client.post(f"{API}/earn", body)
        assert response.status_code == 200
        assert response.json()["data"]["cashback_earned"] == 5
        assert response.json()["data"]["new_balance"] == 5


def test_a_members_first_earn_on_a_card_takes_at_most_8_queries(
    warm, merchant, django_assert_max_num_queries
):
    # Two of them read the card's programme (its rules and tiers), once per process: the
    # steady-state earn above reads none.
    client, _, member = warm
    other = CardFactory.create(app=merchant.app, cashback_percentage=Decimal(10))
    client.get(f"/api/v1/cashback/cards/{other.pk}")
    body = {"card_id": other.pk, "member_id": member.pk, "purchase_amount": "100"}
    with django_assert_max_num_queries(8):
        response = client.post(f"{API}/earn", body)
        assert response.status_code == 200
        assert response.json()["data"]["new_balance"] == 10


def test_redeem_takes_at_most_4_queries(warm, merchant, django_assert_max_num_queries):
    client, card, member = warm
    token = member_token_issue(app=merchant.app, member_id=member.pk).token
    with django_assert_max_num_queries(4):
        response = client.post(
            f"{API}/redeem",
            {"card_id": card.pk, "amount": Decimal(1)},
            headers={"X-Member-Token": token},
        )
        assert response.status_code == 200


def test_an_earn_with_rules_and_a_budget_takes_as_many_queries_as_a_plain_one(
    warm, django_assert_max_num_queries
):
    """The wallet locked with the member's facts, then the entry, which moves the wallet,
    counts the rules' uses and takes from their budgets in its statement."""
    client, card, member = warm
    RuleFactory.create(
        card=card, percentage=Decimal(2), max_uses_per_member=5, per="day", priority=1
    )
    RuleFactory.create(card=card, percentage=Decimal(3), budget=Decimal(1000), priority=2)
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50}
    assert client.post(f"{API}/earn", body).status_code == 200  # the programme in the cache
    with django_assert_max_num_queries(4):
        data = client.post(f"{API}/earn", body).json()["data"]
    assert [part["amount"] for part in data["breakdown"]] == [2.5, 1, 1.5]

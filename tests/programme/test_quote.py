"""The quote: an earn's answer, writing nothing and waiting for no row lock."""

from decimal import Decimal

import pytest
from django.db import connection

from cashback.models import LedgerEntry, Wallet
from members.models import Member
from programme.models import EarningRule, RuleUse
from tests.factories import RuleFactory, TierFactory
from tests.helpers import earn, error

QUOTE = "/api/v1/cashback/cashback/quote"
EARN = "/api/v1/cashback/cashback/earn"
COFFEE = {"sku": "COF-1", "category": "coffee", "amount": "30"}
MUG = {"sku": "MUG-1", "category": "kitchen", "amount": "20"}


def test_a_quote_answers_what_the_earn_then_credits(api, card, member):
    rule = RuleFactory.create(
        card=card, percentage=Decimal(10), categories=["coffee"], budget=Decimal(50),
        max_uses_per_member=1, per="ever",
    )  # fmt: skip
    body = {
        "card_id": card.pk,
        "member_id": member.pk,
        "purchase_amount": "50",
        "lines": [COFFEE, MUG],
    }
    quote = api.post(QUOTE, body)
    assert quote.status_code == 200, quote.json()
    assert quote.json()["data"] == {
        "cashback": 5.5,
        "breakdown": [
            {"source": "card", "rule_id": None, "name": card.name, "amount": 2.5},
            {"source": "rule", "rule_id": rule.pk, "name": rule.name, "amount": 3},
        ],
        "cashback_percentage": 5,
        "currency": "TND",
        "tier": None,
        "status": "available",
        "member_id": member.pk,
    }
    # Nothing was written: no entry, no use, nothing taken from the budget.
    assert not LedgerEntry.objects.exists()
    assert not RuleUse.objects.exists()
    assert EarningRule.objects.get().budget_spent == 0
    earned = api.post(EARN, body).json()["data"]
    assert earned["cashback_earned"] == 5.5
    assert earned["breakdown"] == quote.json()["data"]["breakdown"]
    # The rule's one use is spent: the next quote says so.
    again = api.post(QUOTE, body).json()["data"]
    assert again["cashback"] == 2.5


def test_a_quote_for_a_new_member_creates_nobody(api, card):
    RuleFactory.create(
        card=card, kind="fixed_bonus", percentage=None, amount=Decimal(1), first_purchase_only=True
    )
    body = {"card_id": card.pk, "email": "new@example.com", "purchase_amount": "100"}
    data = api.post(QUOTE, body).json()["data"]
    assert (data["cashback"], data["member_id"]) == (6, None)
    assert not Member.objects.exists()
    assert not Wallet.objects.exists()


def test_a_quote_uses_the_members_tier(api, card, member):
    TierFactory.create(card=card, name="Gold", threshold=Decimal(100), cashback_percentage=8)
    earn(api, card, member, "100")
    data = api.post(QUOTE, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"})
    assert data.json()["data"]["tier"] == "Gold"
    assert data.json()["data"]["cashback"] == 8


def test_a_quote_refuses_what_an_earn_refuses(api, card, member, other_merchant):
    below = api.post(QUOTE, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "5"})
    assert below.status_code == 422
    assert below.json()["error"]["code"] == "below_minimum_purchase"
    unknown = api.post(QUOTE, {"card_id": card.pk, "member_id": 10**9, "purchase_amount": "50"})
    assert unknown.json() == error("not_found")
    card.is_active = False
    card.save()
    inactive = api.post(
        QUOTE, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "50"}
    )
    assert inactive.json() == error("card_inactive")
    bad = api.post(
        QUOTE, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "50", "lines": [MUG]}
    )
    assert bad.status_code == 400


def test_a_quote_needs_cashback_read_only(make_merchant):
    from tests.factories import CardFactory, MemberFactory

    reader = make_merchant(scopes=["cashback_read"])
    card = CardFactory.create(app=reader.app)
    member = MemberFactory.create(app=reader.app)
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "50"}
    assert reader.client.post(QUOTE, body).status_code == 200
    writer = make_merchant(scopes=["cashback_write"])
    assert writer.client.post(QUOTE, body).json() == error("permission_denied")


@pytest.mark.django_db(transaction=True)
def test_a_quote_waits_for_no_row_lock(merchant, card, member):
    rule = RuleFactory.create(card=card, budget=Decimal(100))
    earn(merchant.client, card, member, "100")
    # Another session holds the member's wallet and the rule's row, as an earn in flight does.
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT 1 FROM cashback_wallet WHERE member_id = %s FOR UPDATE", [member.pk]
            )
            cursor.execute(
                "SELECT 1 FROM programme_earningrule WHERE id = %s FOR UPDATE", [rule.pk]
            )
            with connection.cursor() as mine:
                mine.execute("SET lock_timeout = '2s'")
            body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"}
            quote = merchant.client.post(QUOTE, body)
            assert quote.status_code == 200, quote.json()
            assert quote.json()["data"]["cashback"] == 15
            # An earn, which takes the rule's budget under its lock, does wait.
            earned = merchant.client.post(EARN, body)
            assert earned.status_code == 503, earned.json()
    finally:
        other.close()
        with connection.cursor() as mine:
            mine.execute("SET lock_timeout = 0")

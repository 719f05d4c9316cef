from decimal import Decimal

import pytest

from cashback.models import LedgerEntry, Wallet
from members.models import Member
from tests.factories import CardFactory
from tests.helpers import IsoTimestamp, balance_of, counts, error

EARN = "/api/v1/cashback/cashback/earn"


def test_earn_credits_the_percentage_and_answers_the_reference_shape(api, card, member):
    response = api.post(
        EARN,
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "purchase_amount": Decimal("50.00"),
            "reference": "ORDER-12345",
            "metadata": {"store_location": "Downtown", "cashier_id": "EMP-001"},
        },
    )
    assert response.status_code == 200
    entry = LedgerEntry.objects.get()
    assert response.json() == {
        "success": True,
        "data": {
            "transaction_id": entry.pk,
            "purchase_amount": 50.0,
            "cashback_percentage": 5,
            "cashback_earned": 2.5,
            "new_balance": 2.5,
            "currency": "TND",
            "member_id": member.pk,
            "card_id": card.pk,
            "reference": "ORDER-12345",
            "earned_at": IsoTimestamp(),
            "status": "available",
            "available_at": response.json()["data"]["earned_at"],
            "breakdown": [{"source": "card", "rule_id": None, "name": card.name, "amount": 2.5}],
            "pending_balance": 0,
            "member_created": False,
        },
    }
    assert b'"cashback_earned":2.500' in response.content  # exact decimals, 3 places for TND
    assert entry.entry_type == "earning"
    assert entry.event == "cashback_earned"
    assert entry.amount == Decimal("2.5")
    assert entry.balance_after == Decimal("2.5")
    assert entry.purchase_amount == Decimal(50)
    assert entry.cashback_percentage == Decimal(5)
    assert entry.metadata == {"store_location": "Downtown", "cashier_id": "EMP-001"}
    assert balance_of(member, card) == Decimal("2.5")


def test_earns_add_up_on_the_wallet(api, card, member):
    for amount in ("50", "20.5", "33.333"):
        api.post(EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": amount})
    # 2.500 + 1.025 + 1.66665 -> 1.667
    assert balance_of(member, card) == Decimal("5.192")
    assert LedgerEntry.objects.count() == 3


def test_earn_accepts_amounts_as_strings_and_rounds_half_up(api, card, member):
    response = api.post(
        EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "10.01"}
    )
    # 10.01 × 5 % = 0.5005 -> 0.501
    assert response.json()["data"]["cashback_earned"] == 0.501


def test_earn_is_capped_at_the_card_maximum(api, merchant, member):
    card = CardFactory.create(app=merchant.app, cashback_max_amount=Decimal(3))
    response = api.post(EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 500})
    assert response.json()["data"]["cashback_earned"] == 3


def test_earn_by_email_creates_the_member_once(api, card):
    body = {
        "card_id": card.pk,
        "email": "New.Member@Example.com",
        "member_name": "New Member",
        "purchase_amount": 100,
    }
    first = api.post(EARN, body).json()["data"]
    second = api.post(EARN, {**body, "email": "new.member@example.com"}).json()["data"]
    member = Member.objects.get()
    assert member.email == "new.member@example.com"
    assert member.name == "New Member"
    assert first["member_id"] == second["member_id"] == member.pk
    assert second["new_balance"] == 10


def test_a_known_member_s_first_earn_on_another_card_opens_a_wallet_for_that_member(
    api, merchant, card
):
    other_card = CardFactory.create(app=merchant.app)
    first = api.post(EARN, {"card_id": card.pk, "email": "a@example.com", "purchase_amount": 100})
    second = api.post(
        EARN, {"card_id": other_card.pk, "email": "A@example.com", "purchase_amount": 100}
    )
    assert first.status_code == second.status_code == 200
    member = Member.objects.get()
    assert first.json()["data"]["member_id"] == second.json()["data"]["member_id"] == member.pk
    assert sorted(Wallet.objects.filter(member=member).values_list("card_id", flat=True)) == [
        card.pk,
        other_card.pk,
    ]
    assert balance_of(member, other_card) == 5


def test_earn_by_phone_finds_the_member_in_e164(api, merchant, card):
    member = Member.objects.create(app=merchant.app, phone="+21620123456")
    response = api.post(EARN, {"card_id": card.pk, "phone": "20 123 456", "purchase_amount": 40})
    assert response.json()["data"]["member_id"] == member.pk
    assert Member.objects.count() == 1


def test_earn_by_unknown_phone_creates_a_member(api, card):
    response = api.post(
        EARN, {"card_id": card.pk, "phone": "+216 20 123 456", "purchase_amount": 40}
    )
    assert response.status_code == 200
    assert Member.objects.get().phone == "+21620123456"


def test_earn_with_member_id_prefers_it_over_email(api, card, member):
    response = api.post(
        EARN,
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "email": "someone.else@example.com",
            "purchase_amount": 40,
        },
    )
    assert response.json()["data"]["member_id"] == member.pk
    assert Member.objects.count() == 1


def test_earn_below_the_minimum_records_nothing(api, card, member):
    before = counts()
    response = api.post(
        EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "9.999"}
    )
    assert response.status_code == 422
    assert response.json() == error("below_minimum_purchase", details={"cashback_min_amount": 10.0})
    assert counts() == before


def test_earn_too_small_for_one_minor_unit_records_nothing(api, merchant, member):
    card = CardFactory.create(app=merchant.app, cashback_min_amount=0)
    before = counts()
    response = api.post(
        EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "0.009"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "below_minimum_purchase"
    assert counts() == before


def test_earn_below_minimum_does_not_create_the_member(api, card):
    response = api.post(EARN, {"card_id": card.pk, "email": "x@example.com", "purchase_amount": 1})
    assert response.status_code == 422
    assert Member.objects.count() == 0


def test_earn_on_an_inactive_card_is_refused(api, merchant, member):
    card = CardFactory.create(app=merchant.app, is_active=False)
    response = api.post(EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50})
    assert response.status_code == 422
    assert response.json() == error("card_inactive")
    assert Wallet.objects.count() == 0


def test_earn_for_an_unknown_member_id_is_404(api, card):
    response = api.post(EARN, {"card_id": card.pk, "member_id": 999999, "purchase_amount": 50})
    assert response.status_code == 404
    assert response.json() == error("not_found", "Member not found.")


def test_earn_on_an_unknown_card_is_404(api, member):
    response = api.post(EARN, {"card_id": 999999, "member_id": member.pk, "purchase_amount": 50})
    assert response.status_code == 404
    assert response.json() == error("not_found", "Card not found.")


def test_earn_without_any_member_identifier_is_400(api, card):
    response = api.post(EARN, {"card_id": card.pk, "purchase_amount": 50})
    assert response.status_code == 400
    assert response.json() == error(
        "validation_error", details={"member_id": ["Give member_id, email or phone."]}
    )


def test_earn_with_a_reused_reference_replays_or_conflicts(api, card, member):
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50, "reference": "R1"}
    first = api.post(EARN, body)
    again = api.post(EARN, {**body, "purchase_amount": "50.000"})
    assert again.status_code == 200
    assert again.json() == first.json()
    other = api.post(EARN, {**body, "purchase_amount": 60})
    assert other.status_code == 409
    assert other.json() == error(
        "duplicate_reference", details={"transaction_id": first.json()["data"]["transaction_id"]}
    )
    assert LedgerEntry.objects.count() == 1
    assert balance_of(member, card) == Decimal("2.5")


@pytest.mark.parametrize(
    ("currency", "amount", "ok"),
    [
        ("JPY", "1000", True),
        ("JPY", "1000.5", False),
        ("EUR", "20.25", True),
        ("EUR", "20.255", False),
    ],
)
def test_earn_checks_decimal_places_against_the_card_currency(
    api, merchant, member, currency, amount, ok
):
    card = CardFactory.create(app=merchant.app, currency=currency, cashback_min_amount=0)
    response = api.post(
        EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": amount}
    )
    assert (response.status_code == 200) is ok
    if not ok:
        assert response.json()["error"]["code"] == "validation_error"
        assert list(response.json()["error"]["details"]) == ["purchase_amount"]

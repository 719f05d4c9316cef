from decimal import Decimal

import pytest

from cashback.models import LedgerEntry
from tests.factories import CardFactory, MemberFactory
from tests.helpers import IsoTimestamp, balance_of, counts, error, give_balance

REFUND = "/api/v1/cashback/cashback/refund"


@pytest.fixture
def earning(merchant, card, member):
    return give_balance(app=merchant.app, card=card, member=member, purchase="250")  # 12.500


def test_refund_deducts_the_rate_on_the_refund_amount(api, card, member, earning):
    response = api.post(
        REFUND,
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "refund_amount": Decimal("25.00"),
            "reference": "REFUND-ORDER-12345",
        },
    )
    assert response.status_code == 200
    entry = LedgerEntry.objects.get(entry_type="refund")
    assert response.json() == {
        "success": True,
        "data": {
            "transaction_id": entry.pk,
            "cashback_deducted": 1.25,
            "cashback_not_recovered": 0,
            "refund_amount": 25,
            "previous_balance": 12.5,
            "new_balance": 11.25,
            "currency": "TND",
            "member_id": member.pk,
            "card_id": card.pk,
            "reference": "REFUND-ORDER-12345",
            "original_transaction_id": None,
            "balance_warning": None,
            "refunded_at": IsoTimestamp(),
            "pending_deducted": 0,
            "pending_balance": 0,
            "breakdown": None,
        },
    }
    assert entry.amount == Decimal("-1.25")
    assert entry.event == "cashback_refunded"
    assert balance_of(member, card) == Decimal("11.25")


def test_refund_with_an_explicit_deduction(api, card, member, earning):
    response = api.post(
        REFUND,
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "refund_amount": 25,
            "cashback_to_deduct": "2.000",
        },
    )
    assert response.json()["data"]["cashback_deducted"] == 2
    assert balance_of(member, card) == Decimal("10.5")


def test_refund_beyond_the_balance_stops_at_zero_with_a_warning(api, card, member, earning):
    response = api.post(
        REFUND,
        {"card_id": card.pk, "member_id": member.pk, "refund_amount": 25, "cashback_to_deduct": 20},
    )
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["cashback_deducted"] == 12.5
    assert data["cashback_not_recovered"] == 7.5
    assert data["new_balance"] == 0
    assert data["balance_warning"] == (
        "The balance covered only 12.500 of the 20.000 cashback to take back; "
        "7.500 was not recovered and the balance is now 0."
    )
    assert balance_of(member, card) == 0


def test_refund_on_an_empty_wallet_records_a_zero_deduction(api, merchant, card):
    member = MemberFactory.create(app=merchant.app)
    response = api.post(REFUND, {"card_id": card.pk, "member_id": member.pk, "refund_amount": 10})
    data = response.json()["data"]
    assert data["cashback_deducted"] == 0
    assert data["cashback_not_recovered"] == 0.5
    assert LedgerEntry.objects.get().amount == 0


def test_refund_by_email_finds_the_member(api, card, member, earning):
    response = api.post(
        REFUND, {"card_id": card.pk, "email": member.email.upper(), "refund_amount": 20}
    )
    assert response.json()["data"]["member_id"] == member.pk


def test_refund_never_creates_a_member(api, card):
    before = counts()
    response = api.post(
        REFUND, {"card_id": card.pk, "email": "nobody@example.com", "refund_amount": 20}
    )
    assert response.status_code == 404
    assert response.json() == error("not_found", "Member not found.")
    assert counts() == before


def test_partial_refunds_of_an_earning_take_back_exactly_its_cashback(api, merchant, member):
    card = CardFactory.create(
        app=merchant.app, cashback_percentage=Decimal("7"), cashback_min_amount=0
    )
    earning = give_balance(app=merchant.app, card=card, member=member, purchase="10")  # 0.700
    deducted = []
    for part in ("3.333", "3.333", "3.334"):
        response = api.post(
            REFUND,
            {
                "card_id": card.pk,
                "member_id": member.pk,
                "refund_amount": part,
                "original_transaction_id": earning.pk,
            },
        )
        assert response.status_code == 200, response.json()
        assert response.json()["data"]["original_transaction_id"] == earning.pk
        deducted.append(Decimal(str(response.json()["data"]["cashback_deducted"])))
    assert deducted == [Decimal("0.233"), Decimal("0.233"), Decimal("0.234")]
    assert sum(deducted) == earning.amount
    assert balance_of(member, card) == 0


def test_refunds_of_an_earning_cannot_exceed_its_purchase(api, card, member, earning):
    body = {
        "card_id": card.pk,
        "member_id": member.pk,
        "original_transaction_id": earning.pk,
    }
    assert api.post(REFUND, {**body, "refund_amount": 200}).status_code == 200
    before = counts()
    response = api.post(REFUND, {**body, "refund_amount": "50.001"})
    assert response.status_code == 422
    assert response.json() == error(
        "refund_exceeds_purchase",
        details={
            "purchase_amount": 250,
            "already_refunded": 200,
            "refundable": 50,
            "original_transaction_id": earning.pk,
        },
    )
    # In the card's currency: three places for TND, never the column's four or a bare 0.
    assert (
        b'{"purchase_amount":250.000,"already_refunded":200.000,"refundable":50.000,'
        in response.content
    )
    assert counts() == before


def test_explicit_deductions_never_claw_back_more_than_the_earning(api, card, member, earning):
    body = {"card_id": card.pk, "member_id": member.pk, "original_transaction_id": earning.pk}
    api.post(REFUND, {**body, "refund_amount": 10, "cashback_to_deduct": 12})
    response = api.post(REFUND, {**body, "refund_amount": 10, "cashback_to_deduct": 5})
    assert response.json()["data"]["cashback_deducted"] == 0.5  # 12.5 credited, 12 taken


def test_refund_naming_an_unknown_original_is_404(api, card, member, earning):
    response = api.post(
        REFUND,
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "refund_amount": 10,
            "original_transaction_id": earning.pk + 100,
        },
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_refund_on_an_inactive_card_is_422(api, merchant, member):
    card = CardFactory.create(app=merchant.app, is_active=False)
    response = api.post(REFUND, {"card_id": card.pk, "member_id": member.pk, "refund_amount": 1})
    assert response.status_code == 422
    assert response.json() == error("card_inactive")


def test_refund_with_a_reused_reference(api, card, member, earning):
    body = {"card_id": card.pk, "member_id": member.pk, "refund_amount": 20, "reference": "RF"}
    first = api.post(REFUND, body)
    assert api.post(REFUND, body).json() == first.json()
    assert api.post(REFUND, {**body, "refund_amount": 21}).json() == error(
        "duplicate_reference", details={"transaction_id": first.json()["data"]["transaction_id"]}
    )
    assert balance_of(member, card) == Decimal("11.5")


def test_a_refund_naming_no_earning_takes_back_what_split_purchases_earned(api, merchant, member):
    """100 purchases of 17 JPY at 3 % earn 1 each (0.51, rounded half-up); refunded as one
    purchase of 1,700 they give back those 100, not the 51 one purchase would have earned."""
    card = CardFactory.create(
        app=merchant.app, currency="JPY", cashback_percentage=Decimal(3), cashback_min_amount=0
    )
    for _ in range(100):
        give_balance(app=merchant.app, card=card, member=member, purchase="17")
    assert balance_of(member, card) == 100
    response = api.post(
        REFUND, {"card_id": card.pk, "member_id": member.pk, "refund_amount": "1700"}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["cashback_deducted"] == 100
    assert balance_of(member, card) == 0


def test_partial_refunds_naming_no_earning_take_back_the_wallet_s_own_share(api, merchant, member):
    card = CardFactory.create(
        app=merchant.app, currency="JPY", cashback_percentage=Decimal(3), cashback_min_amount=0
    )
    for _ in range(10):
        give_balance(app=merchant.app, card=card, member=member, purchase="17")  # 1 each
    taken = [
        api.post(
            REFUND, {"card_id": card.pk, "member_id": member.pk, "refund_amount": "85"}
        ).json()["data"]["cashback_deducted"]
        for _ in range(2)
    ]
    # Half the purchases each time: half of what they earned, not 3 % of 85 (2.55, so 3).
    assert taken == [5, 5]
    assert balance_of(member, card) == 0


def test_a_refund_naming_no_earning_takes_back_what_capped_earnings_credited(api, card, member):
    # Each earning capped on its own: refunded as one, they give back what each credited.
    capped = CardFactory.create(
        app=card.app,
        cashback_percentage=Decimal(5),
        cashback_max_amount=Decimal(1),
        cashback_min_amount=0,
    )
    give_balance(app=card.app, card=capped, member=member, purchase="100")  # 5, capped to 1
    give_balance(app=card.app, card=capped, member=member, purchase="100")  # 1
    response = api.post(
        REFUND, {"card_id": capped.pk, "member_id": member.pk, "refund_amount": "200"}
    )
    # The two purchases earned 2 in all: both are given back, though the rate's cap is 1.
    assert response.json()["data"]["cashback_deducted"] == 2


def test_a_refund_naming_no_earning_counts_only_earnings_at_the_card_s_rate(api, merchant, member):
    card = CardFactory.create(
        app=merchant.app, cashback_percentage=Decimal(10), cashback_min_amount=0
    )
    give_balance(app=merchant.app, card=card, member=member, purchase="1000")  # 100, a promotion
    card.cashback_percentage = Decimal(1)  # over
    card.save()
    give_balance(app=merchant.app, card=card, member=member, purchase="1000")  # 10
    response = api.post(
        REFUND, {"card_id": card.pk, "member_id": member.pk, "refund_amount": "1000"}
    )
    assert response.json()["data"]["cashback_deducted"] == 10


def test_a_refund_the_merchant_let_the_member_keep_does_not_raise_the_next_one(api, card, member):
    give_balance(app=card.app, card=card, member=member, purchase="100")  # 5
    give_balance(app=card.app, card=card, member=member, purchase="100")  # 5
    body = {"card_id": card.pk, "member_id": member.pk, "refund_amount": "100"}
    # The merchant takes back next to nothing of the first purchase's 5.
    kept = api.post(REFUND, {**body, "cashback_to_deduct": "0.001"}).json()["data"]
    assert kept["cashback_deducted"] == 0.001
    assert api.post(REFUND, body).json()["data"]["cashback_deducted"] == 5

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cashback.models import LedgerEntry
from cashback.services import cashback_redeem
from tests.helpers import IsoTimestamp, error, give_balance

HISTORY = "/api/v1/cashback/cashback/history"


@pytest.fixture
def entries(merchant, card, member):
    earning = give_balance(app=merchant.app, card=card, member=member, purchase="50")
    redemption = cashback_redeem(
        app=merchant.app, card=card, member_id=member.pk, amount=Decimal("1"), reference="R-9"
    ).entry
    return earning, redemption


def test_history_answers_the_reference_shape_newest_first(api, card, member, entries):
    earning, redemption = entries
    response = api.get(HISTORY, {"card_id": card.pk, "member_id": member.pk})
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "data": {
            "card_id": card.pk,
            "member_id": member.pk,
            "transactions": [
                {
                    "id": redemption.pk,
                    "type": "redemption",
                    "amount": -1,
                    "points": 0,
                    "event": "cashback_redeemed",
                    "balance_after": 1.5,
                    "purchase_amount": None,
                    "refund_amount": None,
                    "reference": "R-9",
                    "metadata": {},
                    "created_at": IsoTimestamp(),
                    "pending_amount": 0,
                    "pending_balance_after": 0,
                    "original_transaction_id": None,
                    "breakdown": None,
                },
                {
                    "id": earning.pk,
                    "type": "earning",
                    "amount": 2.5,
                    "points": 0,
                    "event": "cashback_earned",
                    "balance_after": 2.5,
                    "purchase_amount": 50,
                    "refund_amount": None,
                    "reference": None,
                    "metadata": {},
                    "created_at": IsoTimestamp(),
                    "pending_amount": 0,
                    "pending_balance_after": 0,
                    "original_transaction_id": None,
                    "breakdown": [
                        {"source": "card", "rule_id": None, "name": card.name, "amount": 2.5}
                    ],
                },
            ],
            "pagination": {"limit": 20, "offset": 0, "total": 2, "has_more": False},
        },
    }


def test_history_pages_with_limit_and_offset(api, merchant, card, member):
    for _ in range(5):
        give_balance(app=merchant.app, card=card, member=member, purchase="20")
    ids = list(LedgerEntry.objects.order_by("-id").values_list("id", flat=True))
    page = api.get(HISTORY, {"card_id": card.pk, "member_id": member.pk, "limit": 2, "offset": 2})
    data = page.json()["data"]
    assert [t["id"] for t in data["transactions"]] == ids[2:4]
    assert data["pagination"] == {"limit": 2, "offset": 2, "total": 5, "has_more": True}
    last = api.get(HISTORY, {"card_id": card.pk, "member_id": member.pk, "limit": 2, "offset": 4})
    assert last.json()["data"]["pagination"]["has_more"] is False


def test_history_filters_by_type(api, card, member, entries):
    response = api.get(HISTORY, {"card_id": card.pk, "member_id": member.pk, "type": "earning"})
    assert [t["type"] for t in response.json()["data"]["transactions"]] == ["earning"]
    assert response.json()["data"]["pagination"]["total"] == 1


def test_history_filters_by_dates(api, card, member, entries):
    earning, redemption = entries
    LedgerEntry.objects.filter(pk=earning.pk).update(created_at=timezone.now() - timedelta(days=10))
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    after = api.get(HISTORY, {"card_id": card.pk, "member_id": member.pk, "created_after": cutoff})
    assert [t["id"] for t in after.json()["data"]["transactions"]] == [redemption.pk]
    before = api.get(
        HISTORY, {"card_id": card.pk, "member_id": member.pk, "created_before": cutoff}
    )
    assert [t["id"] for t in before.json()["data"]["transactions"]] == [earning.pk]


def test_history_of_a_member_without_activity_is_empty(api, card, member):
    response = api.get(HISTORY, {"card_id": card.pk, "member_id": member.pk})
    assert response.json()["data"]["transactions"] == []
    assert response.json()["data"]["pagination"] == {
        "limit": 20,
        "offset": 0,
        "total": 0,
        "has_more": False,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"type": "gift"}, "type"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2025-13-45"}, "created_before"),
    ],
)
def test_history_refuses_bad_parameters(api, card, member, params, field):
    response = api.get(HISTORY, {"card_id": card.pk, "member_id": member.pk, **params})
    assert response.status_code == 400
    body = response.json()
    assert body == error("validation_error", details=body["error"]["details"])
    assert list(body["error"]["details"]) == [field]


def test_history_of_an_unknown_member_is_404(api, card):
    response = api.get(HISTORY, {"card_id": card.pk, "member_id": 123456})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("0468-01-09T05:19:50-22:07", 200),
        ("2025-01-15T10:30:00+23:59", 200),
        ("0001-01-01T00:00:00+05:00", 400),
    ],
)
def test_history_reads_any_offset_and_refuses_dates_off_the_calendar(
    api, card, member, entries, moment, status
):
    response = api.get(
        HISTORY, {"card_id": card.pk, "member_id": member.pk, "created_before": moment}
    )
    assert response.status_code == status
    if status == 200:
        assert response.json()["data"]["transactions"] == []
    else:
        assert response.json() == error(
            "validation_error",
            details={"created_before": ["Enter a date and time within the calendar."]},
        )


def test_a_refund_of_an_earning_names_it_in_history(api, merchant, card, member):
    earning = give_balance(app=merchant.app, card=card, member=member, purchase="100")
    refunded = api.post(
        "/api/v1/cashback/cashback/refund",
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "refund_amount": "40",
            "original_transaction_id": earning.pk,
        },
    )
    assert refunded.status_code == 200
    items = api.get(HISTORY, {"card_id": card.pk, "member_id": member.pk}).json()["data"]
    by_id = {item["id"]: item for item in items["transactions"]}
    assert by_id[refunded.json()["data"]["transaction_id"]]["original_transaction_id"] == (
        earning.pk
    )
    assert by_id[earning.pk]["original_transaction_id"] is None

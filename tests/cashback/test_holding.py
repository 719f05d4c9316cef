"""Held (pending) cashback: earned on a card with `cashback_holding_days`, spendable once
released, refunded from what is held first."""

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from cashback.ledger_check import ledger_verify
from cashback.models import EntryType, LedgerEntry, Lot, Wallet
from cashback.services import cashback_release_due
from tests.factories import CardFactory
from tests.helpers import balance, earn, error, instant

API = "/api/v1/cashback/cashback"


@pytest.fixture
def held_card(merchant):
    return CardFactory.create(app=merchant.app, cashback_holding_days=14, cashback_min_amount=0)


def release(as_of):
    out = StringIO()
    call_command("release_cashback", "--json", "--as-of", as_of.isoformat(), stdout=out)
    return json.loads(out.getvalue())


def test_an_earning_on_a_holding_card_is_pending_until_available_at(api, held_card, member):
    data = earn(api, held_card, member, "100")
    earned_at = instant(data["earned_at"])
    assert data["status"] == "pending"
    assert instant(data["available_at"]) == earned_at + timedelta(days=14)
    assert data["cashback_earned"] == 5
    assert data["new_balance"] == 0
    assert data["pending_balance"] == 5
    assert balance(api, held_card, member)["cashback_balance"] == 0
    assert balance(api, held_card, member)["pending_balance"] == 5


def test_pending_cashback_cannot_be_redeemed(api, held_card, member, member_token):
    earn(api, held_card, member, "100")
    response = api.post(
        f"{API}/redeem",
        {"card_id": held_card.pk, "amount": "1"},
        headers={"X-Member-Token": member_token},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "insufficient_balance"


def test_release_makes_due_cashback_spendable_once(api, held_card, member):
    first = earn(api, held_card, member, "100")
    earn(api, held_card, member, "40")
    soon = timezone.now() + timedelta(days=14, minutes=1)
    assert release(soon - timedelta(days=1)) == {"released": 0, "amount": 0}
    assert release(soon) == {"released": 2, "amount": 7}
    assert release(soon) == {"released": 0, "amount": 0}

    after = balance(api, held_card, member)
    assert (after["cashback_balance"], after["pending_balance"]) == (7, 0)
    releases = LedgerEntry.objects.filter(entry_type=EntryType.RELEASE).order_by("id")
    assert [(r.amount, r.pending_amount, r.event) for r in releases] == [
        (Decimal(5), Decimal(-5), "cashback_released"),
        (Decimal(2), Decimal(-2), "cashback_released"),
    ]
    assert releases[0].original_entry_id == first["transaction_id"]
    assert ledger_verify().mismatches == []


def test_a_refund_naming_a_held_earning_takes_from_its_pending_part_only(api, held_card, member):
    earn(api, held_card, member, "100")
    cashback_release_due(as_of=timezone.now() + timedelta(days=15))  # 5 spendable
    held = earn(api, held_card, member, "100")  # 5 held
    response = api.post(
        f"{API}/refund",
        {
            "card_id": held_card.pk,
            "member_id": member.pk,
            "refund_amount": "40",
            "original_transaction_id": held["transaction_id"],
        },
    )
    data = response.json()["data"]
    assert (data["cashback_deducted"], data["pending_deducted"]) == (2, 2)
    assert (data["new_balance"], data["pending_balance"]) == (5, 3)
    # The release gives what is left of the earning.
    assert cashback_release_due(as_of=timezone.now() + timedelta(days=15)).amount == 3
    assert balance(api, held_card, member)["cashback_balance"] == 8
    assert ledger_verify().mismatches == []


def test_a_refund_without_an_earning_takes_held_cashback_first_newest_first(api, merchant, member):
    card = CardFactory.create(app=merchant.app, cashback_min_amount=0)
    earn(api, card, member, "100")  # 5 spendable
    card.cashback_holding_days = 7
    card.save()
    older = earn(api, card, member, "40")  # 2 held
    newer = earn(api, card, member, "20")  # 1 held
    response = api.post(
        f"{API}/refund",
        {"card_id": card.pk, "member_id": member.pk, "refund_amount": "100"},
    )
    data = response.json()["data"]
    assert (data["cashback_deducted"], data["pending_deducted"]) == (5, 3)
    assert (data["new_balance"], data["pending_balance"]) == (3, 0)
    held = dict(Lot.objects.values_list("source_id", "pending"))
    assert held[newer["transaction_id"]] == held[older["transaction_id"]] == 0
    assert cashback_release_due(as_of=timezone.now() + timedelta(days=8)).released == 0
    assert ledger_verify().mismatches == []


def test_a_refund_without_an_earning_takes_the_newest_held_earning_first(api, held_card, member):
    older = earn(api, held_card, member, "100")  # 5 held
    newer = earn(api, held_card, member, "40")  # 2 held
    api.post(
        f"{API}/refund",
        {"card_id": held_card.pk, "member_id": member.pk, "refund_amount": "60"},
    )  # 3 to take: 2 from the newer, 1 from the older
    pending = dict(Lot.objects.values_list("source_id", "pending"))
    assert pending == {older["transaction_id"]: 4, newer["transaction_id"]: 0}


def test_the_cards_config_and_create_card_carry_the_lifecycle_days(merchant):
    out = StringIO()
    call_command(
        "create_card",
        "--app", merchant.app.app_id, "--name", "Held", "--percentage", "5",
        "--holding-days", "30", "--expiry-days", "365", "--json",
        stdout=out,
    )  # fmt: skip
    config = json.loads(out.getvalue())["cashback_config"]
    assert (config["cashback_holding_days"], config["cashback_expiry_days"]) == (30, 365)


def test_create_card_refuses_an_expiry_of_zero_days(merchant):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="cashback_expiry_days"):
        call_command(
            "create_card",
            "--app", merchant.app.app_id, "--name", "X", "--percentage", "5",
            "--expiry-days", "0",
        )  # fmt: skip


def test_release_as_of_is_read_as_iso_8601(held_card, merchant):
    with pytest.raises(Exception, match="ISO 8601"):
        call_command("release_cashback", "--as-of", "next tuesday")
    assert Wallet.objects.count() == 0


def test_balance_of_an_unknown_member_is_still_404(api, held_card):
    response = api.get(f"{API}/balance", {"card_id": held_card.pk, "member_id": 999999})
    assert response.json() == error("not_found")


def test_history_shows_a_held_earning_and_its_release(api, held_card, member):
    earned = earn(api, held_card, member, "100")
    cashback_release_due(as_of=timezone.now() + timedelta(days=15))
    history = api.get(f"{API}/history", {"card_id": held_card.pk, "member_id": member.pk}).json()[
        "data"
    ]["transactions"]
    release, earning = history
    assert (earning["type"], earning["amount"], earning["pending_amount"]) == ("earning", 0, 5)
    assert (release["type"], release["amount"], release["pending_amount"]) == ("release", 5, -5)
    assert (release["balance_after"], release["pending_balance_after"]) == (5, 0)
    assert release["original_transaction_id"] == earned["transaction_id"]
    only = api.get(
        f"{API}/history", {"card_id": held_card.pk, "member_id": member.pk, "type": "release"}
    ).json()["data"]
    assert [t["id"] for t in only["transactions"]] == [release["id"]]

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from cashback.models import LedgerEntry, Lot, Wallet
from cashback.services import cashback_redeem, cashback_refund
from members.services import MemberRef
from tests.helpers import give_balance


def verify() -> tuple[str | int | None, dict]:
    out = StringIO()
    try:
        call_command("verify_ledger", "--json", stdout=out)
        code: str | int | None = 0
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


@pytest.fixture
def activity(merchant, card, member):
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    give_balance(app=merchant.app, card=card, member=member, purchase="60")
    cashback_redeem(app=merchant.app, card=card, member_id=member.pk, amount=Decimal("2"))
    cashback_refund(
        app=merchant.app,
        card=card,
        member_ref=MemberRef(member_id=member.pk),
        refund_amount=Decimal("100"),
        cashback_to_deduct=Decimal("50"),
    )
    return Wallet.objects.get()


def test_verify_ledger_finds_no_mismatch_after_activity(activity):
    assert verify() == (0, {"wallets_checked": 1, "mismatches": []})


def test_verify_ledger_catches_a_balance_changed_behind_its_back(activity):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE cashback_wallet SET balance = balance + 1 WHERE id = %s",
            [activity.pk],
        )
    code, report = verify()
    assert code == 1
    assert report["wallets_checked"] == 1
    [mismatch] = report["mismatches"]
    assert mismatch["wallet_id"] == activity.pk
    assert mismatch["problem"] == "balance differs from the sum of its entries"
    assert Decimal(str(mismatch["balance"])) == Decimal(1)
    assert Decimal(str(mismatch["ledger_sum"])) == Decimal(0)


def test_verify_ledger_catches_a_broken_balance_after(activity):
    entry = LedgerEntry.objects.order_by("id")[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE cashback_ledgerentry SET balance_after = 99 WHERE id = %s",
            [entry.pk],
        )
    code, report = verify()
    assert code == 1
    assert report["mismatches"][0]["problem"] == (
        f"entry {entry.pk} has balances after it that do not follow"
    )


def test_verify_ledger_names_the_offender_in_text(activity):
    Wallet.objects.filter(pk=activity.pk).update(balance=Decimal("7"))
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("verify_ledger", stdout=out)
    assert f"MISMATCH wallet {activity.pk}" in out.getvalue()


def test_verify_ledger_catches_a_wrong_entry_count(activity):
    Wallet.objects.filter(pk=activity.pk).update(entries_count=99)
    code, report = verify()
    assert code == 1
    assert report["mismatches"][0]["problem"] == (
        "entries_count differs from the number of its entries"
    )


def test_verify_ledger_catches_a_broken_pending_balance(activity):
    Wallet.objects.filter(pk=activity.pk).update(pending_balance=Decimal("1"))
    code, report = verify()
    assert code == 1
    assert report["mismatches"][0]["problem"] == (
        "pending_balance differs from the sum of its entries' pending amounts"
    )


@pytest.fixture
def two_lots(merchant, card, member):
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    give_balance(app=merchant.app, card=card, member=member, purchase="60")
    cashback_redeem(app=merchant.app, card=card, member_id=member.pk, amount=Decimal("1"))
    return Wallet.objects.get()


def test_verify_ledger_catches_lots_that_do_not_add_up(two_lots):
    lot = Lot.objects.filter(wallet=two_lots, remaining__gt=0)[0]
    Lot.objects.filter(pk=lot.pk).update(remaining=lot.remaining + 1)
    code, report = verify()
    assert code == 1
    assert report["mismatches"][0]["problem"] == "its lots do not add up to its balances"


def test_verify_ledger_catches_a_lot_moved_without_its_movement(two_lots):
    lots = list(Lot.objects.filter(wallet=two_lots, remaining__gt=0)[:2])
    assert len(lots) == 2
    # The wallet's total stays right; the lots no longer match their own entries.
    Lot.objects.filter(pk=lots[0].pk).update(remaining=lots[0].remaining - Decimal("0.001"))
    Lot.objects.filter(pk=lots[1].pk).update(remaining=lots[1].remaining + Decimal("0.001"))
    code, report = verify()
    assert code == 1
    assert "differs from its entry and its movements" in report["mismatches"][0]["problem"]


def test_verify_ledger_catches_a_breakdown_that_does_not_add_up(activity):
    earning = LedgerEntry.objects.filter(entry_type="earning").order_by("id").first()
    assert earning is not None
    assert earning.breakdown is not None
    part = {**earning.breakdown[0], "amount": str(Decimal(earning.breakdown[0]["amount"]) + 1)}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE cashback_ledgerentry SET breakdown = %s WHERE id = %s",
            [json.dumps([part]), earning.pk],
        )
    code, report = verify()
    assert code == 1
    assert report["mismatches"][0]["problem"] == (
        f"entry {earning.pk} has a breakdown that does not add up to it"
    )

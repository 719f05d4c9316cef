"""The hot path's statements write and read rows exactly as the ORM does, on either database."""

from decimal import Decimal

import pytest
from django.db import transaction

from cashback.models import LedgerEntry, Wallet
from config import sql
from tests.factories import CardFactory, MemberFactory
from tests.helpers import give_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet():
    card = CardFactory()
    member = MemberFactory(app=card.app)
    give_balance(app=card.app, card=card, member=member, purchase="100")
    return Wallet.objects.get(card=card, member=member)


def _new_entry(wallet: Wallet, **fields) -> LedgerEntry:
    return LedgerEntry(
        app_id=wallet.app_id,
        wallet=wallet,
        card_id=wallet.card_id,
        entry_type="adjustment",
        event="cashback_adjusted",
        amount=Decimal("1.2345"),
        balance_after=Decimal("6.2345"),
        **fields,
    )


def _values(entry: LedgerEntry) -> dict:
    return {f.attname: getattr(entry, f.attname) for f in LedgerEntry._meta.concrete_fields}


def test_insert_writes_what_create_writes(wallet):
    inserted = sql.insert(_new_entry(wallet, metadata={"till": 7, "items": ["a", "é"]}))
    created = LedgerEntry.objects.create(**{**_values(_new_entry(wallet)), "id": None})

    assert inserted.pk is not None and inserted.pk != created.pk
    assert not inserted._state.adding
    stored = LedgerEntry.objects.get(pk=inserted.pk)
    assert stored.metadata == {"till": 7, "items": ["a", "é"]}
    assert stored.amount == Decimal("1.2345")
    assert stored.unrecovered_amount == Decimal(0)  # the model's default
    assert stored.created_at == inserted.created_at  # auto_now_add, set by the insert
    assert stored.created_at.tzinfo is not None


def test_select_reads_what_the_orm_reads(wallet):
    entry = sql.insert(_new_entry(wallet, metadata={"k": [1, 2]}, reference="R-1"))

    read = sql.select_one(LedgerEntry, "cashback_ledgerentry.id = %s", [entry.pk])

    assert _values(read) == _values(LedgerEntry.objects.get(pk=entry.pk))
    assert isinstance(read.amount, Decimal)
    assert not read._state.adding


def test_select_returns_none_or_every_row_in_order(wallet):
    first = sql.insert(_new_entry(wallet))
    second = sql.insert(_new_entry(wallet))
    where = "cashback_ledgerentry.id IN (%s, %s)"

    rows = sql.select(
        LedgerEntry, where, [first.pk, second.pk], tail="ORDER BY cashback_ledgerentry.id DESC"
    )

    assert [row.pk for row in rows] == [second.pk, first.pk]
    assert sql.select_one(LedgerEntry, "cashback_ledgerentry.id = %s", [0]) is None


def test_select_sets_extra_columns_as_attributes(wallet):
    read = sql.select_one(
        Wallet, "cashback_wallet.id = %s", [wallet.pk], extra={"doubled": "entries_count * 2"}
    )
    assert read.doubled == 2


def test_update_returning_gives_the_row_after_the_update(wallet):
    with transaction.atomic():
        moved = sql.update_returning(
            Wallet, "entries_count = entries_count + 5", "id = %s", [wallet.pk]
        )
    assert moved.entries_count == 6
    assert moved.balance == wallet.balance
    assert Wallet.objects.get(pk=wallet.pk).entries_count == 6


def test_update_returning_without_a_row_is_none(wallet):
    assert sql.update_returning(Wallet, "entries_count = 0", "id = %s", [0]) is None
    assert Wallet.objects.get(pk=wallet.pk).entries_count == 1


def test_the_database_can_return_rows_from_writes():
    assert sql.check_returning() == []

"""The wallet's one statement the ORM cannot say, and the one way a wallet is locked."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from cashback.models import Wallet
from cashback.services.adjust import cashback_adjust
from tests.factories import CardFactory, MemberFactory
from tests.helpers import give_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet():
    card = CardFactory.create()
    member = MemberFactory.create(app=card.app)
    give_balance(app=card.app, card=card, member=member, purchase="100")  # 5.000
    return Wallet.objects.get(card=card, member=member)


def move(wallet: Wallet, amount: str) -> Wallet | None:
    return Wallet.objects.move(
        app_id=wallet.app_id,
        card_id=wallet.card_id,
        member_id=wallet.member_id,
        amount=Decimal(amount),
    )


def fields(wallet: Wallet) -> dict:
    return {f.attname: getattr(wallet, f.attname) for f in Wallet._meta.concrete_fields}


def test_move_returns_the_wallet_as_the_orm_reads_it_after_the_move(wallet):
    with transaction.atomic():
        moved = move(wallet, "1.2345")

    assert moved is not None
    assert fields(moved) == fields(Wallet.objects.get(pk=wallet.pk))
    assert moved.balance == Decimal("6.2345")
    assert moved.entries_count == wallet.entries_count + 1
    assert moved.updated_at > wallet.updated_at
    assert not moved._state.adding


def test_move_without_a_wallet_is_none_and_changes_nothing(wallet):
    other_member = MemberFactory.create(app=wallet.app)
    assert (
        Wallet.objects.move(
            app_id=wallet.app_id,
            card_id=wallet.card_id,
            member_id=other_member.pk,
            amount=Decimal(1),
        )
        is None
    )
    assert (
        Wallet.objects.move(
            app_id=wallet.app_id + 1,
            card_id=wallet.card_id,
            member_id=wallet.member_id,
            amount=Decimal(1),
        )
        is None
    )  # another app's wallet is not this app's
    assert fields(Wallet.objects.get()) == fields(wallet)


def test_the_database_refuses_a_move_below_zero(wallet):
    with pytest.raises(IntegrityError), transaction.atomic():
        move(wallet, "-5.001")
    assert Wallet.objects.get().balance == Decimal(5)


def test_an_adjustment_locks_the_wallet_row_and_no_other(wallet):
    staff = get_user_model().objects.create_user("support")
    with CaptureQueriesContext(connection) as queries:
        cashback_adjust(wallet=wallet, amount=Decimal("-1"), reason="Goodwill", staff_user=staff)
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert locks
    assert all(sql.endswith('FOR UPDATE OF "cashback_wallet"') for sql in locks), locks

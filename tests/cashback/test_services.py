"""The services, called directly: the rules hold whoever calls them (API, admin, commands)."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards.errors import CardInactive
from cashback.errors import BelowMinimumPurchase, InsufficientBalance
from cashback.ledger_check import ledger_verify
from cashback.models import LedgerEntry, Wallet
from cashback.services import cashback_earn, cashback_redeem, cashback_refund
from core.errors import InvalidInput, NotFound
from members.models import Member
from members.services import MemberRef
from tests.factories import CardFactory, MemberFactory


def test_earn_creates_one_wallet_and_entry(merchant, card, member):
    posted = cashback_earn(
        app=merchant.app,
        card=card,
        member_ref=MemberRef(member_id=member.pk),
        purchase_amount=Decimal("100"),
    )
    assert not posted.replayed
    wallet = Wallet.objects.get()
    assert wallet.balance == Decimal(5)
    assert posted.entry.wallet == wallet
    assert posted.entry.balance_after == Decimal(5)


def test_earn_raises_its_domain_errors(merchant, member):
    inactive = CardFactory.create(app=merchant.app, is_active=False)
    card = CardFactory.create(app=merchant.app)
    ref = MemberRef(member_id=member.pk)
    with pytest.raises(CardInactive):
        cashback_earn(app=merchant.app, card=inactive, member_ref=ref, purchase_amount=Decimal(50))
    with pytest.raises(InvalidInput):
        cashback_earn(
            app=merchant.app, card=card, member_ref=ref, purchase_amount=Decimal("50.5555")
        )
    with pytest.raises(BelowMinimumPurchase):
        cashback_earn(app=merchant.app, card=card, member_ref=ref, purchase_amount=Decimal(9))
    with pytest.raises(NotFound):
        cashback_earn(
            app=merchant.app,
            card=card,
            member_ref=MemberRef(member_id=10**9),
            purchase_amount=Decimal(50),
        )
    assert LedgerEntry.objects.count() == 0


def test_earn_finds_members_of_its_own_app_only(merchant, card, other_merchant):
    stranger = MemberFactory.create(app=other_merchant.app, email="same@example.com")
    posted = cashback_earn(
        app=merchant.app,
        card=card,
        member_ref=MemberRef(email="same@example.com"),
        purchase_amount=Decimal(50),
    )
    assert posted.entry.wallet.member != stranger
    assert Member.objects.filter(email="same@example.com").count() == 2
    with pytest.raises(NotFound):
        cashback_earn(
            app=merchant.app,
            card=card,
            member_ref=MemberRef(member_id=stranger.pk),
            purchase_amount=Decimal(50),
        )


def test_redeem_refuses_more_than_the_balance(merchant, card, member):
    cashback_earn(
        app=merchant.app,
        card=card,
        member_ref=MemberRef(member_id=member.pk),
        purchase_amount=Decimal(100),
    )
    with pytest.raises(InsufficientBalance):
        cashback_redeem(app=merchant.app, card=card, member_id=member.pk, amount=Decimal("5.001"))
    assert Wallet.objects.get().balance == Decimal(5)


def test_refund_floors_at_zero_and_records_what_was_not_recovered(merchant, card, member):
    ref = MemberRef(member_id=member.pk)
    cashback_earn(app=merchant.app, card=card, member_ref=ref, purchase_amount=Decimal(100))
    posted = cashback_refund(
        app=merchant.app,
        card=card,
        member_ref=ref,
        refund_amount=Decimal(100),
        cashback_to_deduct=Decimal(8),
    )
    assert posted.entry.amount == Decimal(-5)
    assert posted.entry.unrecovered_amount == Decimal(3)
    assert Wallet.objects.get().balance == 0


operations = st.lists(
    st.tuples(
        st.sampled_from(["earn", "redeem", "refund"]),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal("5000"), places=3),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_any_sequence_of_operations_keeps_the_ledger_equal_to_the_balance(merchant, ops):
    card = CardFactory.create(
        app=merchant.app, cashback_min_amount=0, cashback_percentage=Decimal("3.3")
    )
    member = MemberFactory.create(app=merchant.app)
    ref = MemberRef(member_id=member.pk)
    expected = Decimal(0)
    for operation, amount in ops:
        try:
            if operation == "earn":
                entry = cashback_earn(
                    app=merchant.app, card=card, member_ref=ref, purchase_amount=amount
                ).entry
            elif operation == "redeem":
                entry = cashback_redeem(
                    app=merchant.app, card=card, member_id=member.pk, amount=amount
                ).entry
            else:
                entry = cashback_refund(
                    app=merchant.app, card=card, member_ref=ref, refund_amount=amount
                ).entry
        except (InsufficientBalance, BelowMinimumPurchase):
            continue
        expected += entry.amount
        assert entry.balance_after == expected >= 0
    wallet = Wallet.objects.filter(member=member, card=card).first()
    assert (wallet.balance if wallet else 0) == expected
    assert ledger_verify().mismatches == []

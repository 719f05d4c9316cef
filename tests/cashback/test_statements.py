"""The statements written out by hand (the wallet's move, the hot path's reads, the ledger's
append) read and write rows exactly as the ORM does; and the one way a wallet is locked."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cards.models import Card
from cashback.events import entry_event_draft
from cashback.models import LedgerEntry, Wallet
from cashback.selectors import member_card
from cashback.services.adjust import cashback_adjust
from core.errors import NotFound
from members.services import MemberRef
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


def test_an_adjustment_locks_the_wallet_row_then_the_staff_users_and_nothing_else(wallet):
    staff = get_user_model().objects.create_user("support")
    with CaptureQueriesContext(connection) as queries:
        cashback_adjust(wallet=wallet, amount=Decimal("-1"), reason="Goodwill", staff_user=staff)
    # The entry's statement locks rules only for an earning that takes from their budgets.
    locks = [
        q["sql"]
        for q in queries.captured_queries
        if " FOR " in q["sql"] and "INSERT INTO cashback_ledgerentry" not in q["sql"]
    ]
    assert len(locks) == 2, locks
    assert locks[0].endswith('FOR UPDATE OF "cashback_wallet"')
    assert locks[1].endswith("FOR NO KEY UPDATE")
    assert 'FROM "auth_user"' in locks[1]


def values(entry: LedgerEntry) -> dict:
    return {f.attname: getattr(entry, f.attname) for f in LedgerEntry._meta.concrete_fields}


def new_entry(wallet: Wallet, **fields) -> dict:
    """An entry as the ledger saves one: its id drawn from the entries' sequence, its time now,
    with its webhook event."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('cashback_ledgerentry', 'id'))")
        (entry_id,) = cursor.fetchone()
    now = fields.pop("created_at", timezone.now())
    if fields.get("entry_type") == "earning":  # a credit opens its lot, which its event tells of
        fields["lot"] = (now, None)
    return {
        "webhook_event": lambda entry: entry_event_draft(entry=entry, card=wallet.card),
        "id": entry_id,
        "created_at": now,
        "app_id": wallet.app_id,
        "wallet": wallet,
        "card_id": wallet.card_id,
        "entry_type": "adjustment",
        "event": "cashback_adjusted",
        "amount": Decimal("1.2345"),
        "balance_after": Decimal("6.2345"),
        # What an earning's event tells of.
        "purchase_amount": Decimal("24.69"),
        "cashback_percentage": Decimal(5),
        **fields,
    }


def test_append_writes_what_create_writes(wallet):
    appended = LedgerEntry.objects.append(
        **new_entry(wallet, metadata={"till": 7, "items": ["a", "é"]}, reference="R-1")
    )
    twin_fields = new_entry(wallet, metadata={"till": 7, "items": ["a", "é"]}, reference="R-2")
    del twin_fields["webhook_event"]
    created = LedgerEntry.objects.create(
        **twin_fields,
        sequence=3,
        type_sequence=2,
    )

    assert appended.pk is not None
    assert not appended._state.adding
    stored, twin = LedgerEntry.objects.get(pk=appended.pk), LedgerEntry.objects.get(pk=created.pk)
    differ = {"id", "reference", "created_at", "sequence", "type_sequence"}
    assert {k: v for k, v in values(stored).items() if k not in differ} == {
        k: v for k, v in values(twin).items() if k not in differ
    }
    assert stored.unrecovered_amount == Decimal(0)  # the model's default
    assert stored.created_at == appended.created_at  # auto_now_add, set by the append
    assert stored.metadata == {"till": 7, "items": ["a", "é"]}
    assert (stored.sequence, stored.type_sequence) == (appended.sequence, 1)


def test_append_numbers_entries_in_their_wallet_and_type_and_keeps_time_forward(wallet):
    # The wallet holds one earning.
    first = LedgerEntry.objects.append(**new_entry(wallet))
    # An entry stamped in the future (a clock that ran ahead) cannot be overtaken in time: an
    # entry dated before it is saved at its time, which its event would not tell, and so is
    # refused with all it wrote.
    ahead = first.created_at + timedelta(hours=1)
    LedgerEntry.objects.filter(pk=first.pk).update(created_at=ahead)
    with pytest.raises(RuntimeError, match="otherwise than its event"), transaction.atomic():
        LedgerEntry.objects.append(**new_entry(wallet, entry_type="earning"))
    assert LedgerEntry.objects.filter(wallet=wallet).count() == 2
    second = LedgerEntry.objects.append(**new_entry(wallet, entry_type="earning", created_at=ahead))
    third = LedgerEntry.objects.append(**new_entry(wallet, created_at=ahead))

    numbers = [(e.sequence, e.type_sequence) for e in (first, second, third)]
    assert numbers == [(2, 1), (3, 2), (4, 2)]
    stored = list(LedgerEntry.objects.filter(wallet=wallet).order_by("sequence"))[1:]
    assert [(e.sequence, e.type_sequence) for e in stored] == numbers
    assert stored[1].created_at == stored[2].created_at == ahead
    assert (second.created_at, third.created_at) == (stored[1].created_at, stored[2].created_at)
    other = Wallet.objects.create(
        app=wallet.app, card=wallet.card, member=MemberFactory.create(app=wallet.app)
    )
    assert LedgerEntry.objects.append(**new_entry(other)).sequence == 1


def test_the_card_of_an_app_is_read_as_the_orm_reads_it(wallet):
    card = Card.objects.get_of_app(app_id=wallet.app_id, card_id=wallet.card_id)

    assert card is not None
    assert values_of(card) == values_of(Card.objects.get(pk=wallet.card_id))
    assert Card.objects.get_of_app(app_id=wallet.app_id + 1, card_id=wallet.card_id) is None


def values_of(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_a_history_page_is_the_orm_page_newest_first(wallet):
    """Whatever the narrowing and the page, the numbered lookups answer what filtering the
    wallet's entries with the ORM answers: the same entries in the same order, the same total."""
    types = ["earning", "redemption", "earning", "refund", "adjustment", "earning", "redemption"]
    for i, entry_type in enumerate(types * 3):
        LedgerEntry.objects.append(**new_entry(wallet, entry_type=entry_type, metadata={"n": i}))
    entries = LedgerEntry.objects.filter(wallet=wallet)
    # Spread in time, two at a time sharing a timestamp (ties fall back on the id).
    base = entries.order_by("sequence")[0].created_at
    for entry in entries:
        entries.filter(pk=entry.pk).update(created_at=base + timedelta(minutes=entry.sequence // 2))
    newest_first = entries.order_by("-created_at", "-id")
    at = [base + timedelta(minutes=m) for m in (-1, 0, 3, 5, 30)]
    narrowings: list[dict] = [{}]
    narrowings += [{"entry_type": t} for t in ("earning", "refund", "reversal")]
    narrowings += [{"created_after": a} for a in at] + [{"created_before": b} for b in at]
    narrowings += [
        {"entry_type": t, "created_after": a, "created_before": b}
        for t in ("earning", "redemption")
        for a in at[:3]
        for b in at[2:]
    ]
    for narrowing in narrowings:
        expected_all = newest_first
        if "entry_type" in narrowing:
            expected_all = expected_all.filter(entry_type=narrowing["entry_type"])
        if "created_after" in narrowing:
            expected_all = expected_all.filter(created_at__gte=narrowing["created_after"])
        if "created_before" in narrowing:
            expected_all = expected_all.filter(created_at__lte=narrowing["created_before"])
        for offset, limit in ((0, 20), (1, 2), (5, 3), (6, 3), (21, 5), (40, 1)):
            page, total = LedgerEntry.objects.history_page(
                wallet_id=wallet.pk,
                entries_count=entries.count(),  # appended here without moving the wallet
                limit=limit,
                offset=offset,
                **narrowing,
            )
            expected = expected_all[offset : offset + limit]
            assert [values(e) for e in page] == [values(e) for e in expected], narrowing
            assert total == expected_all.count(), narrowing


def test_member_card_reads_the_card_and_the_wallet_in_one_query(wallet, django_assert_num_queries):
    app = wallet.app
    with django_assert_num_queries(1):
        found = member_card(
            app=app, card_id=wallet.card_id, member_ref=MemberRef(member_id=wallet.member_id)
        )

    assert values_of(found.card) == values_of(Card.objects.get(pk=wallet.card_id))
    assert (found.wallet_id, found.balance, found.entries_count) == (wallet.pk, Decimal(5), 1)
    newcomer = MemberFactory.create(app=app)
    fresh = member_card(
        app=app, card_id=wallet.card_id, member_ref=MemberRef(member_id=newcomer.pk)
    )
    assert (fresh.wallet_id, fresh.balance, fresh.entries_count) == (None, Decimal(0), 0)
    stranger = MemberFactory.create()
    with pytest.raises(NotFound, match="Member"):
        member_card(app=app, card_id=wallet.card_id, member_ref=MemberRef(member_id=stranger.pk))
    with pytest.raises(NotFound, match="Card"):
        member_card(
            app=stranger.app, card_id=wallet.card_id, member_ref=MemberRef(member_id=stranger.pk)
        )

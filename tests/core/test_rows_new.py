"""`core.rows.new` makes the instance `Model(**fields)` makes, without `__init__`."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cashback.models import EntryType, LedgerEntry, Lot, Wallet
from core.rows import new
from members.models import Member
from tests.factories import CardFactory, MemberFactory
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

# Defaults drawn afresh for each instance (times, random ids): the same kind of value, not the same.
DRAWN = {"created_at", "updated_at", "public_id"}


def fields_of(instance) -> dict:
    return {k: v for k, v in vars(instance).items() if k != "_state" and k not in DRAWN}


@pytest.fixture
def wallet(merchant):
    card = CardFactory.create(app=merchant.app)
    member = MemberFactory.create(app=merchant.app)
    return Wallet.objects.create(app=merchant.app, card=card, member=member)


def test_an_entry_is_made_as_its_model_makes_it(wallet):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    fields = {
        "id": 41,
        "created_at": now,
        "app_id": wallet.app_id,
        "wallet": wallet,
        "card": wallet.card,
        "entry_type": EntryType.EARNING,
        "amount": Decimal("2.500"),
        "balance_after": Decimal("2.500"),
        "idempotency_record": None,
        "metadata": {"till": 3},
    }
    made, model_made = new(LedgerEntry, **fields), LedgerEntry(**fields)
    assert fields_of(made) == fields_of(model_made)
    assert made.created_at == now
    assert made._state.adding
    assert made._state.db is None
    assert made.wallet is wallet
    assert made.card is wallet.card
    assert made.idempotency_record is None
    assert made.metadata == {"till": 3}
    assert new(LedgerEntry).metadata is not new(LedgerEntry).metadata  # a fresh default each


def test_defaults_keys_and_drawn_values_match_the_models(wallet):
    for model, fields in [
        (Lot, {"app_id": wallet.app_id, "wallet_id": wallet.pk, "remaining": Decimal(1)}),
        (WebhookEvent, {"app_id": wallet.app_id, "event_type": "cashback.earned"}),
        (Wallet, {"app": wallet.app, "card": wallet.card, "member": wallet.member}),
        (Member, {"app": wallet.app, "email": "new@example.com", "phone": "+21620123456"}),
    ]:
        made, model_made = new(model, **fields), model(**fields)
        assert fields_of(made) == fields_of(model_made), model
        assert {k: type(v) for k, v in vars(made).items() if k != "_state"} == {
            k: type(v) for k, v in vars(model_made).items() if k != "_state"
        }, model
    event = new(WebhookEvent, app_id=wallet.app_id, event_type="cashback.earned")
    assert event.public_id.startswith("evt_")
    assert event.public_id != new(WebhookEvent, app_id=wallet.app_id).public_id


def test_a_new_member_saves_as_the_models_does(merchant):
    member = new(Member, app=merchant.app, name="Nour", email="nour@example.com")
    member.save()
    assert Member.objects.get(pk=member.pk).email == "nour@example.com"


def test_an_unknown_keyword_is_refused_as_the_model_refuses_it():
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        new(Lot, colour="red")
    with pytest.raises(TypeError):
        Lot(colour="red")  # type: ignore[misc]

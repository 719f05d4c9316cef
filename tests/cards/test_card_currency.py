"""A card's currency is fixed once a wallet holds money in it: the admin, the model's validation
and, underneath every way in, the database refuse the change. A card without wallets may still
change currency."""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.urls import reverse

from cards.admin import CardForm
from cards.models import Card
from cashback.models import LedgerEntry, Wallet
from tests.factories import CardFactory, MemberFactory
from tests.helpers import balance_of, give_balance

LOCKED = "The currency of a card with wallets cannot change."


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("staff", "s@example.com", "pw"))
    return client


@pytest.fixture
def euro_card(merchant):
    return CardFactory.create(
        app=merchant.app, currency="EUR", cashback_min_amount=0, cashback_max_amount=None
    )


@pytest.fixture
def euro_balance(merchant, euro_card):
    member = MemberFactory.create(app=merchant.app)
    give_balance(app=merchant.app, card=euro_card, member=member, purchase="210")
    assert balance_of(member, euro_card) == Decimal("10.50")
    return member


def form_data(card: Card, **changes) -> dict:
    data = {
        "app": card.app_id,
        "unique_identifier": card.unique_identifier,
        "name": card.name,
        "description": card.description,
        "cashback_percentage": str(card.cashback_percentage),
        "cashback_min_amount": str(card.cashback_min_amount),
        "cashback_max_amount": "",
        "currency": card.currency,
        "allows_pin_redemption": "on",
        "cashback_holding_days": "0",
        "cashback_expiry_policy": card.cashback_expiry_policy,
        "tier_period_days": str(card.tier_period_days),
        "tier_retention_days": str(card.tier_retention_days),
        "time_zone": card.time_zone,
        "is_active": "on",
    }
    data.update(changes)
    return data


def test_the_card_form_refuses_a_new_currency_once_a_wallet_exists(euro_card, euro_balance):
    form = CardForm(data=form_data(euro_card, currency="JPY"), instance=euro_card)
    assert not form.is_valid()
    assert form.errors["currency"] == [LOCKED]
    euro_card.refresh_from_db()
    assert euro_card.currency == "EUR"
    assert balance_of(euro_balance, euro_card) == Decimal("10.50")


def test_the_admin_shows_the_currency_read_only_once_a_wallet_exists(
    staff_client, euro_card, euro_balance
):
    url = reverse("admin:cards_card_change", args=[euro_card.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert b'name="currency"' not in page.content
    # A posted currency is ignored; the rest of the change is saved.
    response = staff_client.post(url, form_data(euro_card, currency="JPY", name="Renamed"))
    assert response.status_code == 302
    euro_card.refresh_from_db()
    assert (euro_card.currency, euro_card.name) == ("EUR", "Renamed")
    assert balance_of(euro_balance, euro_card) == Decimal("10.50")


def test_a_read_only_currency_still_bounds_the_amounts_decimal_places(
    staff_client, euro_card, euro_balance
):
    url = reverse("admin:cards_card_change", args=[euro_card.pk])
    response = staff_client.post(url, form_data(euro_card, cashback_min_amount="0.005"))
    assert response.status_code == 200
    assert b"At most 2 decimal places for EUR." in response.content
    euro_card.refresh_from_db()
    assert euro_card.cashback_min_amount == 0


def test_the_admin_lets_a_card_without_wallets_change_currency(staff_client, euro_card):
    url = reverse("admin:cards_card_change", args=[euro_card.pk])
    assert b'name="currency"' in staff_client.get(url).content
    response = staff_client.post(url, form_data(euro_card, currency="JPY"))
    assert response.status_code == 302
    euro_card.refresh_from_db()
    assert euro_card.currency == "JPY"


def test_model_validation_refuses_a_new_currency_once_a_wallet_exists(euro_card, euro_balance):
    euro_card.currency = "JPY"
    with pytest.raises(ValidationError) as refused:
        euro_card.full_clean()
    assert refused.value.message_dict == {"currency": [LOCKED]}
    # Its other fields still validate and save.
    euro_card.currency = "EUR"
    euro_card.cashback_percentage = Decimal(7)
    euro_card.full_clean()
    euro_card.save()


def test_the_database_refuses_a_currency_update_on_a_card_with_wallets(euro_card, euro_balance):
    with pytest.raises(IntegrityError), transaction.atomic():
        Card.objects.filter(pk=euro_card.pk).update(currency="JPY")
    euro_card.currency = "JPY"
    with pytest.raises(IntegrityError), transaction.atomic():
        euro_card.save()
    assert Card.objects.get(pk=euro_card.pk).currency == "EUR"
    assert balance_of(euro_balance, euro_card) == Decimal("10.50")
    # The same currency, or any other field, may still be written.
    assert Card.objects.filter(pk=euro_card.pk).update(currency="EUR", name="Same") == 1
    assert Card.objects.filter(pk=euro_card.pk).update(is_active=False) == 1


def test_the_database_lets_a_card_without_wallets_change_currency(euro_card):
    assert Card.objects.filter(pk=euro_card.pk).update(currency="JPY") == 1
    assert Card.objects.get(pk=euro_card.pk).currency == "JPY"


@pytest.mark.django_db(transaction=True)
def test_a_currency_change_racing_a_cards_first_wallet_is_refused(merchant):
    """The first wallet of a card and a change of its currency serialize: the change waits for
    the wallet's transaction and is then refused, whatever the interleaving."""
    card = CardFactory.create(app=merchant.app, currency="EUR")
    member = MemberFactory.create(app=merchant.app)
    wallet_written, release_wallet = threading.Event(), threading.Event()
    outcome: dict = {}

    def open_wallet():
        try:
            with transaction.atomic():
                Wallet.objects.create(app=merchant.app, card=card, member=member)
                wallet_written.set()
                release_wallet.wait(timeout=30)
        finally:
            connections.close_all()

    def change_currency():
        try:
            wallet_written.wait(timeout=30)
            outcome["updated"] = Card.objects.filter(pk=card.pk).update(currency="JPY")
        except Exception as exc:  # asserted below
            outcome["error"] = exc
        finally:
            connections.close_all()

    opener = threading.Thread(target=open_wallet)
    changer = threading.Thread(target=change_currency)
    opener.start()
    changer.start()
    changer.join(timeout=1)  # the change, if it does not wait, is over by now
    release_wallet.set()
    opener.join(timeout=30)
    changer.join(timeout=30)
    assert isinstance(outcome.get("error"), IntegrityError), outcome
    assert Card.objects.get(pk=card.pk).currency == "EUR"
    assert Wallet.objects.filter(card=card).count() == 1
    assert LedgerEntry.objects.count() == 0

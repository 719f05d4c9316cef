"""A process keeps the cards it read while the configuration generation stays the one it read
them under: an earn reads no card row then, and any change to a card is in force for the very
next request (tests/apps_auth/test_revocation_across_processes.py: in every gunicorn worker)."""

import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cards.models import Card
from core.generations import GENERATION_KEY
from tests.factories import CardFactory

EARN = "/api/v1/cashback/cashback/earn"
pytestmark = pytest.mark.usefixtures("shared_cache_off_the_database")


def earn(merchant, card, email="cache@example.com"):
    body = {"card_id": card.pk, "email": email, "purchase_amount": "100"}
    response = merchant.client.post(EARN, body)
    assert response.status_code == 200, response.json()
    return response.json()["data"]["cashback_earned"]


def card_reads(queries) -> list[str]:
    return [q["sql"] for q in queries if "FROM cards_card c" in q["sql"]]


def test_an_earn_reads_its_card_once_per_generation(merchant):
    card = CardFactory.create(app=merchant.app)
    with CaptureQueriesContext(connection) as first:
        assert earn(merchant, card) == 5
    with CaptureQueriesContext(connection) as second:
        assert earn(merchant, card) == 5
    assert len(card_reads(first.captured_queries)) == 1
    assert card_reads(second.captured_queries) == []


def test_a_card_saved_in_this_process_is_read_again_at_once(merchant):
    card = CardFactory.create(app=merchant.app)
    assert earn(merchant, card) == 5
    card.cashback_percentage = Decimal(8)
    card.save()  # as the back office does
    assert earn(merchant, card) == 8
    card.is_active = False
    card.save()
    response = merchant.client.post(
        EARN, {"card_id": card.pk, "email": "cache@example.com", "purchase_amount": "100"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "card_inactive"


def test_a_change_another_process_commits_lands_with_its_new_generation(merchant):
    card = CardFactory.create(app=merchant.app)
    assert earn(merchant, card) == 5
    # As another process's change reaches this one: the row, then, once committed, a new
    # generation. (A bulk update sends no signal, so here only the generation tells.)
    Card.objects.filter(pk=card.pk).update(cashback_percentage=Decimal(10))
    assert earn(merchant, card) == 5
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)  # another process
    assert earn(merchant, card) == 10


def test_another_app_s_card_is_not_found_even_once_held(merchant, other_merchant):
    card = CardFactory.create(app=merchant.app)
    assert earn(merchant, card) == 5
    response = other_merchant.client.post(
        EARN, {"card_id": card.pk, "email": "x@example.com", "purchase_amount": "100"}
    )
    assert response.status_code == 404

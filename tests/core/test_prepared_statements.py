"""The hot path's written-out statements are prepared on the connection, unless a transaction
pooler is in front (`DATABASE_PREPARED_STATEMENTS` off), where nothing may outlive a
transaction."""

import pytest
from django.db import connection

from cards.models import Card

pytestmark = pytest.mark.django_db(transaction=True)


def prepared_on_this_connection() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


def test_the_card_read_is_prepared_once_per_connection(card, settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    connection.close()
    Card.objects.get_of_app(app_id=card.app_id, card_id=card.pk)
    Card.objects.get_of_app(app_id=card.app_id, card_id=card.pk)
    assert prepared_on_this_connection() == 1


def test_behind_a_transaction_pooler_nothing_is_prepared(card, settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    connection.close()
    for _ in range(3):
        assert Card.objects.get_of_app(app_id=card.app_id, card_id=card.pk) == card
    assert prepared_on_this_connection() == 0

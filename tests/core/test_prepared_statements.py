"""The hot path's written-out statements are prepared on the connection, unless a transaction
pooler is in front (`DATABASE_PREPARED_STATEMENTS` off), where nothing may outlive a
transaction."""

import pytest
from django.db import connection

from cards.models import Card
from cashback.models import Wallet
from members.models import Member

pytestmark = pytest.mark.django_db(transaction=True)


def prepared_on_this_connection() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


def test_the_card_read_is_prepared_once_per_connection(card, reconnects):
    reconnects.DATABASE_PREPARED_STATEMENTS = True
    connection.close()
    Card.objects.get_of_app(app_id=card.app_id, card_id=card.pk)
    Card.objects.get_of_app(app_id=card.app_id, card_id=card.pk)
    assert prepared_on_this_connection() == 1


def test_behind_a_transaction_pooler_nothing_is_prepared(card, reconnects):
    reconnects.DATABASE_PREPARED_STATEMENTS = False
    connection.close()
    for _ in range(3):
        assert Card.objects.get_of_app(app_id=card.app_id, card_id=card.pk) == card
    assert prepared_on_this_connection() == 0


def test_the_insert_of_a_new_member_and_wallet_is_prepared(card, reconnects):
    reconnects.DATABASE_PREPARED_STATEMENTS = True
    connection.close()
    for email in ("one@example.com", "two@example.com"):
        member = Member(app_id=card.app_id, email=email)
        wallet = Wallet.objects.insert_new_with_member(member, app_id=card.app_id, card=card)
        assert wallet is not None
        assert wallet.member_id == member.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%WITH member AS%'"
        )
        assert cursor.fetchone()[0] == 1
    assert Wallet.objects.filter(app_id=card.app_id, member__email="two@example.com").exists()

"""`migrate` is the whole database set-up: it creates the shared cache's table the throttle
counts in (when no REDIS_URL is set), so a deployment that ran only `migrate` serves requests."""

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def cache_table_exists() -> bool:
    return "cashback_cache" in connection.introspection.table_names()


def test_migrate_creates_the_cache_table_and_the_api_answers(merchant):
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE cashback_cache")
    assert not cache_table_exists()

    call_command("migrate", verbosity=0)

    assert cache_table_exists()
    assert merchant.client.get("/api/v1/cashback/cards").status_code == 200

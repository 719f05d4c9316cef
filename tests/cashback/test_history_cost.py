"""A history page costs a handful of rows whatever the filter and the offset: on a wallet of
20,000 entries, a page deep in the wallet, filtered or not, reads the page and not much else
(counted by PostgreSQL itself, in the request's transaction)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from rest_framework.test import APIClient

from apps_auth.models import App
from apps_auth.services import api_key_create
from cashback.models import LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)

ENTRIES = 20_000
HISTORY = "/api/v1/cashback/cashback/history"


def seed_big_wallet():
    """A wallet of ENTRIES earnings, one a second from a year ago (bench_seed), and a client of
    its app."""
    out = StringIO()
    call_command("bench_seed", "--json", f"--hot={ENTRIES}", f"--total={ENTRIES}", stdout=out)
    seeded = json.loads(out.getvalue())
    app = App.objects.get(app_id=seeded["app_id"])
    client = APIClient(
        headers={"X-App-Id": app.app_id, "X-Api-Key": api_key_create(app=app).raw_key}
    )
    first = LedgerEntry.objects.filter(wallet__member_id=seeded["hot_member_id"]).earliest(
        "created_at", "id"
    )
    return client, seeded, first.created_at


def rows_read(client, path: str, query: dict) -> tuple[dict, int]:
    """The answer, and how many ledger rows the request read (sequential and index fetches)."""

    def counted() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT seq_tup_read + COALESCE(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
                "WHERE relid = %s::regclass",
                [LedgerEntry._meta.db_table],
            )
            return cursor.fetchone()[0]

    with transaction.atomic():
        before = counted()
        response = client.get(path, query)
        read = counted() - before
    assert response.status_code == 200, response.content
    return response.json()["data"], read


# (narrowing: type, or seconds after the first entry; offset; the narrowing's total)
PAGES: list[tuple[dict, int, int]] = [
    ({}, 15_000, ENTRIES),
    ({"type": "earning"}, 15_000, ENTRIES),
    ({"type": "redemption"}, 0, 0),
    ({"created_after": 0}, 15_000, ENTRIES),
    ({"created_after": 5_000}, 10_000, ENTRIES - 5_000),
    ({"type": "earning", "created_before": 9_999}, 5_000, 10_000),
    ({"created_after": 100, "created_before": 20_100}, 19_000, ENTRIES - 100),
    ({"created_after": 30_000}, 0, 0),
]


def test_a_page_deep_in_a_big_wallet_reads_only_the_page():
    client, seeded, start = seed_big_wallet()
    for narrowing, offset, total in PAGES:
        query = {
            "card_id": seeded["card_id"],
            "member_id": seeded["hot_member_id"],
            "limit": 20,
            "offset": offset,
        }
        for name in ("created_after", "created_before"):
            if name in narrowing:
                moment = start + timedelta(seconds=narrowing[name])
                query[name] = moment.isoformat().replace("+00:00", "Z")
        if "type" in narrowing:
            query["type"] = narrowing["type"]

        data, read = rows_read(client, HISTORY, query)

        assert data["pagination"]["total"] == total, narrowing
        assert len(data["transactions"]) == max(0, min(20, total - offset)), narrowing
        assert read <= 30, f"{read} ledger rows read for one page {narrowing}"

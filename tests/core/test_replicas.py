"""The read router on PostgreSQL: balance and history read from the replica, except a member's
own reads right after their write, and nothing fails when the replica lags or goes away.

The `replica` alias is the test database itself (a mirror), standing in for a streaming replica;
the lag it reports is set by each test."""

import time

import pytest
from django.db import OperationalError, connections
from django.test.utils import CaptureQueriesContext

from core import replicas
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

API = "/api/v1/cashback/cashback"


@pytest.fixture
def lag(settings, monkeypatch):
    """Replica reads on, checked on every read; returns a setter for the lag the replica
    reports (seconds, or an exception it raises)."""
    settings.REPLICA_READS = True
    settings.REPLICA_CHECK_SECONDS = 0
    settings.REPLICA_MAX_LAG_SECONDS = 1
    reported: dict = {"value": 0.0}

    def replica_lag_seconds():
        if isinstance(reported["value"], Exception):
            raise reported["value"]
        return reported["value"]

    monkeypatch.setattr(replicas, "replica_lag_seconds", replica_lag_seconds)
    return lambda value: reported.update(value=value)


def balance_read_on(api, card, member) -> str:
    """Which database answered the member's balance."""
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        response = api.get(f"{API}/balance", {"card_id": card.pk, "member_id": member.pk})
    assert response.status_code == 200
    read = [q["sql"] for q in replica.captured_queries if "cashback_wallet" in q["sql"]]
    on_primary = [q["sql"] for q in primary.captured_queries if "cashback_wallet" in q["sql"]]
    assert bool(read) != bool(on_primary)
    return "replica" if read else "primary"


def earn(api, card, member) -> None:
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"}
    assert api.post(f"{API}/earn", body).status_code == 200


def test_a_members_read_right_after_their_write_reads_the_primary(lag, api, card, member):
    earn(api, card, member)
    assert balance_read_on(api, card, member) == "primary"


def test_another_members_read_reads_the_replica(lag, api, merchant, card, member):
    other = MemberFactory.create(app=merchant.app)
    earn(api, card, member)
    assert balance_read_on(api, card, other) == "replica"


def test_reads_go_back_to_the_replica_after_the_window(lag, api, card, member, settings):
    settings.REPLICA_READ_YOUR_WRITES_SECONDS = 1
    earn(api, card, member)
    assert balance_read_on(api, card, member) == "primary"
    time.sleep(0.9)  # the window is never cut short, whatever the cache rounds
    assert balance_read_on(api, card, member) == "primary"
    time.sleep(1.3)  # and ends within a second more
    assert balance_read_on(api, card, member) == "replica"


def test_history_reads_where_the_balance_was_read(lag, api, card, member, merchant):
    other = MemberFactory.create(app=merchant.app)
    with CaptureQueriesContext(connections["replica"]) as replica:
        response = api.get(f"{API}/history", {"card_id": card.pk, "member_id": other.pk})
    assert response.status_code == 200
    assert any("cashback_wallet" in q["sql"] for q in replica.captured_queries)


def test_a_replica_lagging_past_the_limit_is_skipped(lag, api, card, member):
    lag(5.0)
    assert balance_read_on(api, card, member) == "primary"
    lag(0.2)
    assert balance_read_on(api, card, member) == "replica"


def test_an_unreachable_replica_is_skipped_without_an_error(lag, api, card, member):
    lag(OperationalError("connection refused"))
    assert balance_read_on(api, card, member) == "primary"


def test_a_read_that_fails_on_the_replica_is_read_on_the_primary(lag, api, card, member):
    replica = connections["replica"]
    replica.close()
    port = replica.settings_dict.get("PORT")
    replica.settings_dict["PORT"] = 1  # nothing listens there: the replica went away
    try:
        response = api.get(f"{API}/balance", {"card_id": card.pk, "member_id": member.pk})
    finally:
        replica.settings_dict["PORT"] = port
        replica.close()
    assert response.status_code == 200
    assert response.json()["data"]["member_id"] == member.pk


def test_the_lag_of_a_server_that_is_not_replaying_is_unknown(settings):
    # The real check, on PostgreSQL: the test database is a primary, not in recovery.
    assert replicas.replica_lag_seconds() is None


def test_without_a_replica_every_read_is_on_the_primary(settings):
    settings.REPLICA_READS = False
    assert replicas.read_database("1:1") == "default"

"""The benchmark's reference (bench/reference) is a ceiling for the service only if it does the
service's work: on a real server it answers each path the benchmark drives with the service's
answer's fields, and writes what the service writes (the ledger it leaves verifies: entries,
balances, lots, events, idempotency records). And the benchmark's targets fail a run that
misses one."""

import json
import urllib.request
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from bench.harness import gunicorn, production_env
from bench.run import Result, targets_report
from cashback.ledger_check import ledger_verify
from cashback.models import LedgerEntry
from tests.helpers import earn

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1/cashback/cashback"


@pytest.fixture
def reference(tmp_path, merchant):
    params = connection.get_connection_params()
    env = production_env(
        f"postgres://{params['user']}@/{params['dbname']}",
        "reference",
        PGHOST=str(params.get("host") or "127.0.0.1"),
        PGPORT=str(params.get("port") or 5432),
        SECRET_KEY=settings.SECRET_KEY,  # the member tokens made here
        REDIS_URL="redis://127.0.0.1:6379/12",
        DJANGO_SETTINGS_MODULE="bench.reference.settings",
    )
    with gunicorn(
        "bench.reference.wsgi:application",
        env,
        workers=1,
        health="/healthz",
        log=tmp_path / "reference.log",
    ) as (base, _):
        yield base, {"X-App-Id": merchant.app.app_id, "X-Bench-App": str(merchant.app.pk)}


def call(base: str, path: str, headers: dict, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 200
        answer = json.loads(response.read(), parse_float=Decimal)
    assert answer["success"] is True
    return answer["data"]


def test_the_reference_answers_and_writes_as_the_service_does(
    reference, api, card, member, member_token
):
    base, headers = reference
    member.phone = "+21620123456"
    member.save()
    service = earn(api, card, member, "50")
    lines = [{"sku": "A", "category": "coffee", "amount": "30", "quantity": 1},
             {"sku": "B", "category": "food", "amount": "20", "quantity": 2}]  # fmt: skip
    earns = [
        ({"member_id": member.pk}, {}),
        ({"email": member.email.upper()}, {}),
        ({"phone": str(member.phone)}, {}),
        ({"email": "newcomer@example.com"}, {}),
        ({"member_id": member.pk}, {"Idempotency-Key": "till-1-sale-1"}),
        ({"member_id": member.pk, "lines": lines}, {}),
    ]
    for who, more in earns:
        body = {"card_id": card.pk, "purchase_amount": "50", **who}
        answer = call(base, "/earn", {**headers, **more}, body)
        assert answer.keys() >= service.keys() - {"breakdown"}, who
        assert answer["cashback_earned"] == Decimal("2.500")
    again = {"card_id": card.pk, "email": "newcomer@example.com", "purchase_amount": "10"}
    assert call(base, "/earn", headers, again)["member_created"] is False
    redeemed = call(
        base, "/redeem", {**headers, "X-Member-Token": member_token},
        {"card_id": card.pk, "amount": "1.5"},
    )  # fmt: skip
    service_redeem = api.post(
        f"{API}/redeem",
        {"card_id": card.pk, "amount": "1"},
        headers={"X-Member-Token": member_token},
    ).json()["data"]
    assert redeemed.keys() >= service_redeem.keys()
    query = f"?card_id={card.pk}&member_id={member.pk}"
    balance = call(base, "/balance" + query, headers)
    service_balance = api.get(f"{API}/balance{query}").json()["data"]
    assert balance["cashback_balance"] == Decimal(service_balance["cashback_balance"])
    history = call(base, "/history" + query + "&limit=3", headers)
    assert len(history["transactions"]) == 3
    assert (
        history["pagination"]["total"] == LedgerEntry.objects.filter(wallet__member=member).count()
    )

    report = ledger_verify()
    assert report.mismatches == []
    assert LedgerEntry.objects.filter(idempotency_record__key="till-1-sale-1").count() == 1
    assert LedgerEntry.objects.exclude(lines=None).count() == 1


def result(rps: float, p99: float, errors: int = 0) -> Result:
    return Result(requests=100, rps=rps, p50_ms=1.0, p99_ms=p99, errors=errors)


def test_a_run_that_misses_a_target_says_which_and_fails():
    results = {
        "service": {"earn_id": result(80, 13), "balance": result(70, 10)},
        "reference": {"earn_id": result(100, 10), "balance": result(100, 10, errors=1)},
    }
    ratios = {"earn_id": [0.8, 0.82], "balance": [0.7, 0.71]}
    p99s = {"earn_id": [1.2, 1.31], "balance": [1.0, 1.0]}
    text, met = targets_report(results, ratios, p99s, {})
    assert not met
    assert "earn by member_id: ratio" not in text  # 0.81 meets 0.80
    assert "earn by member_id: p99 1.31" in text
    assert "balance: ratio 0.70 < 0.80" in text
    assert "balance: 1 errors on the reference" in text
    assert text.startswith("targets checked (earn by member_id, balance: ")
    assert targets_report(
        {"service": {"earn_id": result(90, 10)}, "reference": {"earn_id": result(100, 10)}},
        {"earn_id": [0.9]},
        {"earn_id": [1.0]},
        {},
    )[1]

"""History on a big wallet, filtered and not, and what it costs the other tenants.

    .venv/bin/python bench/history.py [--entries 1000000] [--duration 10]

It recreates a `cashback_history_bench` database (--database-url to choose another), loads one
wallet of --entries entries with `bench_seed` (a year ago, one a second) and a small second app,
serves the service with gunicorn, and drives it with wrk: history pages at random offsets over the
whole wallet, without a filter, with `type`, with `created_after`, with `type` and
`created_before`; then the second app's balance alone, and again while --noisy connections page
through the big wallet's filtered history (within the default rate limit's reach of one app).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    PYTHON,
    ROOT,
    deploy,
    gunicorn,
    production_env,
    recreate_database,
    setup_django,
)
from bench.run import Result, wrk

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/cashback_history_bench"
API = "/api/v1/cashback/cashback"


def prepare(env: dict, entries: int) -> dict:
    """The big wallet (bench_seed) and a second app with one member and a little history."""
    from decimal import Decimal

    from apps_auth.services import api_key_create, app_create
    from cards.services import card_create
    from cashback.services import cashback_earn
    from members.models import Member
    from members.services import MemberRef

    seeding = subprocess.run(
        [PYTHON, "manage.py", "bench_seed", "--json", f"--hot={entries}", f"--total={entries}"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    seeded = json.loads(seeding.stdout.strip().splitlines()[-1])
    from apps_auth.models import App

    big = App.objects.get(app_id=seeded["app_id"])
    neighbour, issued = app_create(
        name="Neighbour", scopes=["cashback_read", "cashback_write"], rate_limit_per_minute=10**9
    )
    card = card_create(app=neighbour, name="Neighbour card", cashback_percentage=Decimal(5))
    member = Member.objects.create(app=neighbour, email="neighbour@example.com")
    for _ in range(20):
        cashback_earn(
            app=neighbour,
            card=card,
            member_ref=MemberRef(member_id=member.pk),
            purchase_amount=Decimal(20),
        )
    return {
        "big": {
            "app_id": big.app_id,
            "api_key": api_key_create(app=big).raw_key,
            "card_id": seeded["card_id"],
            "member_id": seeded["hot_member_id"],
        },
        "neighbour": {
            "app_id": neighbour.app_id,
            "api_key": issued.raw_key,
            "card_id": card.pk,
            "member_id": member.pk,
        },
    }


def script(credentials: dict, path: str, *, max_offset: int = 0) -> str:
    """A wrk script: GET `path`, with `offset=%d` random in [0, max_offset] when it asks."""
    headers = {
        "X-App-Id": credentials["app_id"],
        "X-Api-Key": credentials["api_key"],
        "X-Forwarded-Proto": "https",
    }
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    build = f'string.format("{path}", math.random(0, {max_offset}))' if max_offset else f'"{path}"'
    return (
        f"{lines}\nmath.randomseed(os.time())\n"
        f'request = function()\n  return wrk.format("GET", {build})\nend\n'
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--noisy", type=int, default=14, help="history clients beside balance")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--database-url", default=DEFAULT_DB)
    options = parser.parse_args()

    env = production_env(
        options.database_url,
        "benchmark",
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        LOG_LEVEL="WARNING",
    )
    recreate_database(options.database_url)
    deploy(env)
    setup_django(env)
    shop = prepare(env, options.entries)
    big, neighbour = shop["big"], shop["neighbour"]
    history = f"{API}/history?card_id={big['card_id']}&member_id={big['member_id']}&limit=20"
    # bench_seed writes one entry a second from a year ago: the middle of the wallet's life.
    start = datetime.now(UTC) - timedelta(days=365)
    middle = (start + timedelta(seconds=options.entries // 2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = (start - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    deep = options.entries - 20
    scenarios = {
        "no filter": script(big, history + "&offset=%d", max_offset=deep),
        "type": script(big, history + "&type=earning&offset=%d", max_offset=deep),
        "created_after": script(
            big, history + f"&created_after={after}&offset=%d", max_offset=deep
        ),
        "type, created_before": script(
            big,
            history + f"&type=earning&created_before={middle}&offset=%d",
            max_offset=options.entries // 2 - 20,
        ),
    }
    balance = script(
        neighbour,
        f"{API}/balance?card_id={neighbour['card_id']}&member_id={neighbour['member_id']}",
    )
    log = Path(tempfile.gettempdir()) / "cashback-history-bench.log"
    print(
        f"machine: {os.cpu_count()} cores; gunicorn {options.workers} sync workers; "
        f"one wallet of {options.entries:,} entries; offsets at random over the whole wallet; "
        f"{options.duration}s per measurement"
    )
    results: dict[str, Result] = {}
    with gunicorn("config.wsgi", env, workers=options.workers, health="/healthz", log=log) as (
        base,
        _,
    ):
        for name, lua in scenarios.items():
            wrk(base, lua, duration=2, connections=options.connections)
            results[f"history, {name}"] = wrk(
                base, lua, duration=options.duration, connections=options.connections
            )
        results["neighbour's balance, alone"] = wrk(
            base, balance, duration=options.duration, connections=2
        )
        noisy: dict[str, Result] = {}

        def page_through():
            noisy["history"] = wrk(
                base, scenarios["type"], duration=options.duration + 2, connections=options.noisy
            )

        pager = threading.Thread(target=page_through)
        pager.start()
        results["neighbour's balance, beside it"] = wrk(
            base, balance, duration=options.duration, connections=2
        )
        pager.join()
        results[f"history, type, {options.noisy} clients"] = noisy["history"]

    print(f"{'':38} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, result in results.items():
        print(
            f"{name:38} {result.rps:8.0f} {result.p50_ms:8.2f} {result.p99_ms:8.2f} "
            f"{result.errors:7d}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fault drill: retries, cut-off requests and a killed worker must neither lose nor double money.

For a bounded time, several client processes send random earns, redeems and refunds to a real
server (gunicorn, 2 workers, PostgreSQL), each operation under its own Idempotency-Key. Some
requests are cut off by a client timeout mid-flight; every failure without an answer is retried
with the same key and body until the server gives one. Meanwhile one server worker is killed
with SIGKILL and gunicorn starts a new one. Afterwards the drill checks `verify_ledger`, and
that the ledger holds exactly the operations the clients saw succeed, each once, and that every
balance equals the sum of what the clients were told.

    .venv/bin/python bench/fault_drill.py [--duration 30] [--clients 4] [--members 6]

It prints one verdict line and exits 1 on any mismatch.
"""

import argparse
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    gunicorn,
    manage,
    production_env,
    recreate_database,
    setup_django,
    worker_pids,
)

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/cashback_drill"


def prepare(members: int) -> dict:
    """An app, a card and members with their tokens, made through the project's own services."""
    from decimal import Decimal as D

    from apps_auth.services import app_create
    from cards.services import card_create
    from members.models import Member
    from members.tokens import member_token_issue

    app, issued = app_create(
        name="Fault drill",
        scopes=["cashback_read", "cashback_write", "card_read"],
        rate_limit_per_minute=1_000_000,  # the drill is about money, not the rate limit
    )
    card = card_create(
        app=app,
        name="Drill card",
        cashback_percentage=D("7.5"),
        cashback_min_amount=D(0),
        cashback_max_amount=D(500),
    )
    people = []
    for i in range(members):
        member = Member.objects.create(app=app, email=f"drill{i}@example.com", name=f"Drill {i}")
        token = member_token_issue(app=app, member_id=member.pk, ttl_seconds=3600).token
        people.append({"id": member.pk, "token": token})
    return {"app_id": app.app_id, "api_key": issued.raw_key, "card_id": card.pk, "members": people}


class Client:
    """One till: sends operations and retries each under its key until the server answers."""

    def __init__(self, base: str, shop: dict, seed: int, stop_at: float, drain_until: float):
        self.base, self.shop = base, shop
        self.random = random.Random(seed)
        self.stop_at, self.drain_until = stop_at, drain_until
        self.seed = seed
        self.sent = self.retried = self.cut_off = 0
        self.outcomes: list[dict] = []
        self.unresolved = 0

    def send(self, path: str, body: dict, key: str, token: str | None, timeout: float):
        headers = {
            "Content-Type": "application/json",
            "X-App-Id": self.shop["app_id"],
            "X-Api-Key": self.shop["api_key"],
            "Idempotency-Key": key,
        }
        if token:
            headers["X-Member-Token"] = token
        request = urllib.request.Request(
            f"{self.base}/api/v1/cashback/cashback/{path}",
            data=json.dumps(body).encode(),
            headers=headers,
            method="POST",
        )
        self.sent += 1
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except TimeoutError:
            self.cut_off += 1
            return None, None
        except (urllib.error.URLError, ConnectionError, OSError):
            return None, None  # the worker died under this request, or is restarting

    def operation(self) -> tuple[str, dict, str | None]:
        member = self.random.choice(self.shop["members"])
        card_id = self.shop["card_id"]
        kind = self.random.choices(["earn", "redeem", "refund"], weights=[5, 3, 2])[0]
        amount = str(Decimal(self.random.randint(1, 400_000)) / 1000)
        if kind == "earn":
            body = {"card_id": card_id, "member_id": member["id"], "purchase_amount": amount}
            return kind, body, None
        if kind == "redeem":
            small = str(Decimal(self.random.randint(1, 20_000)) / 1000)
            return kind, {"card_id": card_id, "amount": small}, member["token"]
        body = {"card_id": card_id, "member_id": member["id"], "refund_amount": amount}
        return kind, body, None

    def run(self) -> dict:
        n = 0
        while time.monotonic() < self.stop_at:
            n += 1
            kind, body, token = self.operation()
            key = f"drill-{self.seed}-{n}"
            attempt = 0
            while True:
                # One request in ten is cut off by a timeout shorter than the server needs.
                timeout = 0.002 if self.random.random() < 0.1 else 10.0
                status, payload = self.send(kind, body, key, token, timeout)
                if status in (200, 422):
                    self.outcomes.append(
                        {"kind": kind, "status": status, "body": body, "data": payload.get("data")}
                    )
                    break
                if status not in (None, 409, 500, 502, 503) or (
                    status == 409 and payload["error"]["code"] != "request_in_progress"
                ):
                    raise RuntimeError(f"unexpected answer {status} {payload} to {kind} {body}")
                if time.monotonic() > self.drain_until:
                    self.unresolved += 1
                    break
                attempt += 1
                self.retried += 1
                time.sleep(min(0.05 * 2**attempt, 1.0) * self.random.uniform(0.5, 1.5))
        return {
            "sent": self.sent,
            "retried": self.retried,
            "cut_off": self.cut_off,
            "unresolved": self.unresolved,
            "outcomes": self.outcomes,
        }


def client_process(args) -> dict:
    base, shop, seed, stop_at, drain_until = args
    return Client(base, shop, seed, stop_at, drain_until).run()


def verify_ledger(env: dict) -> tuple[list[str], int]:
    """Runs `manage.py verify_ledger --json`, as an operator would."""
    run = manage(env, "verify_ledger", "--json", capture=True)
    report = json.loads(run.stdout)
    problems = [f"verify_ledger: {m['wallet_id']} {m['problem']}" for m in report["mismatches"]]
    if run.returncode != 0 and not problems:
        problems.append(f"verify_ledger exited {run.returncode}: {run.stderr.strip()}")
    return problems, report["wallets_checked"]


def reconcile(outcomes: list[dict]) -> tuple[list[str], int]:
    """Compares the ledger with what the clients were told; returns the mismatches."""
    from cashback.models import LedgerEntry, Wallet

    problems = []

    told: dict[int, Decimal] = {}
    ids = []
    expected_by_member: dict[int, Decimal] = {}
    for outcome in outcomes:
        if outcome["status"] != 200:
            continue
        data = outcome["data"]
        ids.append(data["transaction_id"])
        moved = {
            "earn": Decimal(str(data.get("cashback_earned", 0))),
            "redeem": -Decimal(str(data.get("amount_redeemed", 0))),
            "refund": -Decimal(str(data.get("cashback_deducted", 0))),
        }[outcome["kind"]]
        told[data["transaction_id"]] = moved
        member = data["member_id"]
        expected_by_member[member] = expected_by_member.get(member, Decimal(0)) + moved

    if len(ids) != len(set(ids)):
        problems.append("one transaction_id was reported for two operations")
    entries = dict(LedgerEntry.objects.values_list("id", "amount"))
    for missing in set(told) - set(entries):
        problems.append(f"transaction {missing} was reported but is not in the ledger")
    for unknown in set(entries) - set(told):
        problems.append(f"ledger entry {unknown} matches no operation a client saw succeed")
    for entry_id in set(told) & set(entries):
        if entries[entry_id] != told[entry_id]:
            problems.append(
                f"entry {entry_id} moved {entries[entry_id]}, the client saw {told[entry_id]}"
            )
    for wallet in Wallet.objects.all():
        expected = expected_by_member.get(wallet.member_id, Decimal(0))
        if wallet.balance != expected:
            problems.append(
                f"wallet {wallet.pk}: balance {wallet.balance}, clients add up to {expected}"
            )
    return problems, len(entries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of load")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--database-url", default=os.environ.get("DRILL_DATABASE_URL", DEFAULT_DB))
    options = parser.parse_args()

    env = production_env(
        options.database_url,
        "fault-drill",
        IDEMPOTENCY_LEASE_SECONDS="3",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="ERROR",
    )
    recreate_database(options.database_url)
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    setup_django(env)
    shop = prepare(options.members)

    log = Path(tempfile.gettempdir()) / "cashback-fault-drill.log"
    with gunicorn("config.wsgi", env, workers=2, health="/healthz", log=log) as (base, server):
        stop_at = time.monotonic() + options.duration
        drain_until = stop_at + 60
        with multiprocessing.get_context("spawn").Pool(options.clients) as pool:
            jobs = pool.map_async(
                client_process,
                [(base, shop, seed, stop_at, drain_until) for seed in range(options.clients)],
            )
            time.sleep(options.duration / 3)
            victim = worker_pids(server.pid)[0]
            os.kill(victim, signal.SIGKILL)
            time.sleep(1.5)
            respawned = [pid for pid in worker_pids(server.pid) if pid != victim]
            results = jobs.get(timeout=options.duration + 120)

    outcomes = [o for r in results for o in r["outcomes"]]
    ledger_problems, wallets = verify_ledger(env)
    mismatches, entries = reconcile(outcomes)
    problems = ledger_problems + mismatches
    unresolved = sum(r["unresolved"] for r in results)
    if unresolved:
        problems.append(f"{unresolved} operations never got an answer")
    ok = sum(o["status"] == 200 for o in outcomes)
    verdict = "PASS" if not problems else "FAIL"
    for problem in problems[:20]:
        print(f"  mismatch: {problem}")
    print(
        f"FAULT DRILL {verdict}: {options.duration:g}s, {options.clients} clients; "
        f"requests sent {sum(r['sent'] for r in results)}, "
        f"retried {sum(r['retried'] for r in results)}, "
        f"cut off {sum(r['cut_off'] for r in results)}; "
        f"worker killed 1 (pid {victim}, {len(respawned)} running after); "
        f"operations {len(outcomes)} ({ok} succeeded, {len(outcomes) - ok} business errors); "
        f"ledger entries {entries} in {wallets} wallets, "
        f"verify_ledger mismatches {len(ledger_problems)}; "
        f"mismatches {len(problems)}"
    )
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())

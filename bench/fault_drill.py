"""Fault drill: retries, cut-off requests, killed processes and a flaky webhook receiver must
neither lose nor double money, nor lose an event.

For a bounded time, several client processes send random earns, redeems, refunds and reversals
to a real server (gunicorn, 2 workers, PostgreSQL) on three cards: one plain, one that holds
cashback a day, one whose cashback expires after a day. Each operation goes under its own
Idempotency-Key; some requests are cut off by a client timeout mid-flight, and every failure
without an answer is retried with the same key and body until the server gives one. Refunds
name held earnings the client saw; reversals name redemptions it saw succeed. Meanwhile
`release_cashback` and `expire_cashback` run over and over with `--as-of` in the future, so
they have work; the background worker (`manage.py worker`) delivers every event to a receiver
the drill runs, which verifies each signature and answers some requests 500 or too late. One
gunicorn worker is killed with SIGKILL, and the background worker twice, each time while a
delivery is in flight; a new one is started at once.

Beside that tenant, two others share the server and the worker. A stalled tenant earns all along
and registers the most endpoints an app may hold, each at an address that accepts connections
and never answers, so that the worker always has more of its deliveries due than it can send.
A probe tenant has held and expiring cashback: twice during the load, with the operator's runs
paused, one of its lots is made due and one expired, and the drill waits for the worker to
release and expire them.

Afterwards the drill lets the worker deliver what is left, then checks `verify_ledger`; that
the ledger holds exactly the operations the clients saw succeed, each once, with the amounts
they were told, and otherwise only releases and expirations of the earnings they saw; that
every balance adds up; that every entry and every expiry warning has its event, each event
was delivered, and the receiver acknowledged every event's `webhook-id` (duplicates from
retries allowed and counted), saw none unknown and no bad signature; that each of those events
was first attempted within seconds of being recorded (`FIRST_ATTEMPT_P99`, `FIRST_ATTEMPT_MAX`),
whatever the stalled tenant's backlog, and the probe's release and expiry came within
`LIFECYCLE_WITHIN` seconds; and that the server answered no request with a 5xx and neither it
nor the worker logged an error.

    .venv/bin/python bench/fault_drill.py [--duration 30] [--clients 4] [--members 6]

It prints one verdict line and a summary, and exits 1 on any mismatch.
"""

import argparse
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from standardwebhooks import Webhook, WebhookVerificationError

from bench.harness import (
    PYTHON,
    ROOT,
    deploy,
    free_port,
    gunicorn,
    manage,
    production_env,
    recreate_database,
    setup_django,
    worker_pids,
)

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/cashback_drill"
# The webhook settings of the drill's server: a short timeout and short backoffs, so that the
# retries the receiver provokes happen within the drill; a worker silent for a few seconds is
# taken for dead, so that the jobs a killed worker held are run again soon.
WEBHOOK_TIMEOUT = 2.0
SERVER_SETTINGS = {
    "WEBHOOK_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT),
    "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    "WEBHOOK_RETRY_MAX_SECONDS": "4",
    "WORKER_CONCURRENCY": "8",
    "WORKER_POLL_SECONDS": "0.5",
    "WORKER_HEARTBEAT_SECONDS": "1",
    "WORKER_STALLED_SECONDS": "4",
    "WORKER_RECOVERY_SECONDS": "2",
    # Releases and expiries every two seconds, so that their lateness is measured in seconds.
    "CASHBACK_LIFECYCLE_CRON": "* * * * * */2",
}
FAIL_RATE = 0.05  # the receiver answers 500
LATE_RATE = 0.003  # the receiver answers after the sender's timeout
DRAIN_TIMEOUT = 90  # seconds for the worker to deliver what is left
# The fault tenant's events are first attempted within FIRST_ATTEMPT_P99 seconds of being
# recorded (99 in 100) and all within FIRST_ATTEMPT_MAX (those caught by a killed worker
# included), whatever the stalled tenant's backlog; the probe tenant's lots are released and
# expired by the worker within LIFECYCLE_WITHIN seconds of coming due.
FIRST_ATTEMPT_P99 = 10.0
FIRST_ATTEMPT_MAX = 20.0
LIFECYCLE_WITHIN = 10.0
STALLED_ENDPOINTS = 16  # CASHBACK_WEBHOOK_ENDPOINTS_PER_APP's default: all an app may hold


def default_database_url() -> str:
    """DRILL_DATABASE_URL; else a database named after DATABASE_URL's with `_drill`, on its
    server (drills of several checkouts on one server do not collide); else `cashback_drill`
    on the local server."""
    if os.environ.get("DRILL_DATABASE_URL"):
        return os.environ["DRILL_DATABASE_URL"]
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://")) and "/" in base.split("://", 1)[1]:
        server, name = base.split("?", 1)[0].rsplit("/", 1)
        if name:
            return f"{server}/{name}_drill"
    return DEFAULT_DB


def prepare(members: int, hook_url: str) -> dict:
    """A test-mode app, its three cards, members with their tokens and a webhook endpoint for
    every event, made through the project's own services."""
    from decimal import Decimal as D

    from apps_auth.services import app_create
    from cards.services import card_create
    from members.models import Member
    from members.tokens import member_token_issue
    from webhooks.services import webhook_endpoint_create

    app, issued = app_create(
        name="Fault drill",
        scopes=["cashback_read", "cashback_write", "card_read", "webhooks"],
        rate_limit_per_minute=1_000_000,  # the drill is about money, not the rate limit
    )
    card = {"percentage": D("7.5"), "min_amount": D(0), "max_amount": D(500)}
    cards = {
        "plain": card_create(app=app, name="Drill card", **_card(card)),
        "held": card_create(
            app=app,
            name="Drill card, held",
            cashback_holding_days=1,
            cashback_expiry_days=2,
            **_card(card),
        ),
        "expiring": card_create(
            app=app, name="Drill card, expiring", cashback_expiry_days=1, **_card(card)
        ),
    }
    people = []
    for i in range(members):
        member = Member.objects.create(app=app, email=f"drill{i}@example.com", name=f"Drill {i}")
        token = member_token_issue(app=app, member_id=member.pk, ttl_seconds=3600).token
        people.append({"id": member.pk, "token": token})
    endpoint = webhook_endpoint_create(app=app, url=hook_url)
    return {
        "pk": app.pk,
        "app_id": app.app_id,
        "api_key": issued.raw_key,
        "cards": {name: c.pk for name, c in cards.items()},
        "members": people,
        "endpoint_id": endpoint.pk,
        "secret": endpoint.secret,
    }


def prepare_stalled(stalled_url: str) -> dict:
    """The stalled tenant: a test-mode app whose every endpoint (as many as an app may hold)
    points at an address that never answers, and a plain card."""
    from decimal import Decimal as D

    from apps_auth.services import app_create
    from cards.services import card_create
    from webhooks.services import webhook_endpoint_create

    app, issued = app_create(
        name="Stalled tenant",
        scopes=["cashback_read", "cashback_write"],
        rate_limit_per_minute=1_000_000,
    )
    card = card_create(
        app=app,
        name="Stalled card",
        **_card({"percentage": D(5), "min_amount": D(0), "max_amount": None}),
    )
    for n in range(STALLED_ENDPOINTS):
        webhook_endpoint_create(app=app, url=f"{stalled_url}/{n}")
    return {"app_id": app.app_id, "api_key": issued.raw_key, "card_id": card.pk, "pk": app.pk}


def prepare_probe() -> dict:
    """The probe tenant: a card that holds cashback a day, one whose cashback expires after a
    day, and a member."""
    from decimal import Decimal as D

    from apps_auth.services import app_create
    from cards.services import card_create
    from members.models import Member

    app, _ = app_create(name="Probe tenant", scopes=["cashback_read"])
    card = {"percentage": D(5), "min_amount": D(0), "max_amount": None}
    held = card_create(app=app, name="Probe, held", cashback_holding_days=1, **_card(card))
    expiring = card_create(app=app, name="Probe, expiring", cashback_expiry_days=1, **_card(card))
    member = Member.objects.create(app=app, email="probe@example.com", name="Probe")
    return {"app": app, "held": held, "expiring": expiring, "member": member}


def _card(card: dict) -> dict:
    return {
        "cashback_percentage": card["percentage"],
        "cashback_min_amount": card["min_amount"],
        "cashback_max_amount": card["max_amount"],
    }


class Receiver:
    """The endpoint's receiver: a local HTTP server that verifies each POST's signature with
    `standardwebhooks` and counts its `webhook-id`. It answers some 500 and some after the
    sender's timeout, at random; `hold()` makes it keep the next request past the timeout and
    returns once one is held, so that the worker can be killed with a delivery in flight."""

    def __init__(self, seed: int):
        self.webhook: Webhook | None = None  # the endpoint's secret, once it is registered
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()  # webhook-id → POSTs
        self.acknowledged: set[str] = set()  # answered 2xx in time
        self.types: dict[str, str] = {}
        self.bad_signatures: list[str] = []
        self.failed = self.late = 0
        self.hold_wanted = threading.Event()
        self.holding = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cashback"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def hold(self, timeout: float) -> bool:
        self.holding.clear()
        self.hold_wanted.set()
        held = self.holding.wait(timeout)
        self.hold_wanted.clear()
        return held

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in request.headers.items()}
        webhook_id = headers.get("webhook-id", "")
        try:
            if self.webhook is None:
                raise WebhookVerificationError("no secret yet")
            payload = self.webhook.verify(body, headers)
        except WebhookVerificationError:
            payload = None
        with self.lock:
            self.received[webhook_id] += 1
            if payload is None:
                self.bad_signatures.append(webhook_id)
            else:
                self.types[webhook_id] = payload["type"]
            late = fail = False
            if self.hold_wanted.is_set() and not self.holding.is_set():
                self.holding.set()
                late = True
            else:
                draw = self.random.random()
                late, fail = draw < LATE_RATE, LATE_RATE <= draw < LATE_RATE + FAIL_RATE
            self.late += late
            self.failed += fail
        if late:
            time.sleep(WEBHOOK_TIMEOUT + 1)
        try:
            request.send_response(500 if fail else 204)
            request.end_headers()
        except OSError:
            return  # the sender gave up (or died) first
        if not (late or fail or payload is None):
            with self.lock:
                self.acknowledged.add(webhook_id)


class StalledAddress:
    """A loopback port that takes connections into its backlog and never answers them: to a
    sender, a receiver that accepted the request and hangs until the sender gives up."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4096)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks"

    def close(self) -> None:
        self.listener.close()


class StalledTenant(threading.Thread):
    """The stalled tenant's till: an earn every tenth of a second until stopped, each event for
    every one of its endpoints."""

    def __init__(self, base: str, tenant: dict):
        super().__init__(daemon=True)
        self.base, self.tenant = base, tenant
        self.stopping = threading.Event()
        self.earned = self.failed = 0

    def run(self) -> None:
        n = 0
        while not self.stopping.wait(0.1):
            n += 1
            request = urllib.request.Request(
                f"{self.base}/api/v1/cashback/cashback/earn",
                data=json.dumps(
                    {
                        "card_id": self.tenant["card_id"],
                        "email": f"stalled{n % 20}@example.com",
                        "purchase_amount": "10.000",
                    }
                ).encode(),
                headers={
                    "Content-Type": "application/json",
                    "X-App-Id": self.tenant["app_id"],
                    "X-Api-Key": self.tenant["api_key"],
                },
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.earned += response.status == 200
            except (urllib.error.URLError, OSError):
                self.failed += 1  # a killed gunicorn worker's request


class Client:
    """One till: sends operations and retries each under its key until the server answers."""

    def __init__(self, base: str, shop: dict, seed: int, stop_at: float, drain_until: float):
        self.base, self.shop = base, shop
        self.random = random.Random(seed)
        self.stop_at, self.drain_until = stop_at, drain_until
        self.seed = seed
        self.sent = self.retried = self.cut_off = self.server_errors = 0
        self.outcomes: list[dict] = []
        self.unresolved = 0
        # What this till saw succeed and may name later.
        self.redemptions: list[dict] = []
        self.reversed: list[dict] = []
        self.held_earnings: list[dict] = []

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

    def amount(self, high: int) -> str:
        return str(Decimal(self.random.randint(1, high)) / 1000)

    def operation(self) -> tuple[str, dict, str | None]:
        member = self.random.choice(self.shop["members"])
        card_id = self.random.choice(list(self.shop["cards"].values()))
        kind = self.random.choices(["earn", "redeem", "refund", "reverse"], weights=[6, 3, 2, 1.5])[
            0
        ]
        if kind == "reverse" and self.reversed and self.random.random() < 0.05:
            # A second reversal of one redemption, under a new key: 409 already_reversed.
            return kind, dict(self.random.choice(self.reversed)), None
        if kind == "reverse" and self.redemptions:
            redemption = self.redemptions.pop(self.random.randrange(len(self.redemptions)))
            self.reversed.append(redemption)
            return kind, redemption, None
        if kind == "refund" and self.held_earnings and self.random.random() < 0.5:
            earning = self.random.choice(self.held_earnings)
            share = Decimal(self.random.randint(1, 60)) / 100
            refund = (Decimal(str(earning["purchase_amount"])) * share).quantize(Decimal("0.001"))
            body = {
                "card_id": earning["card_id"],
                "member_id": earning["member_id"],
                "refund_amount": str(max(refund, Decimal("0.001"))),
                "original_transaction_id": earning["transaction_id"],
            }
            return kind, body, None
        if kind == "redeem":
            return kind, {"card_id": card_id, "amount": self.amount(20_000)}, member["token"]
        if kind == "refund":
            body = {
                "card_id": card_id,
                "member_id": member["id"],
                "refund_amount": self.amount(400_000),
            }
            return kind, body, None
        body = {
            "card_id": card_id,
            "member_id": member["id"],
            "purchase_amount": self.amount(400_000),
        }
        return "earn", body, None

    def seen(self, kind: str, data: dict) -> None:
        if kind == "redeem":
            self.redemptions.append(
                {"card_id": data["card_id"], "transaction_id": data["transaction_id"]}
            )
        elif kind == "earn" and data["status"] == "pending":
            self.held_earnings.append(data)

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
                code = (payload or {}).get("error", {}).get("code")
                if status in (200, 422) or (kind == "reverse" and code == "already_reversed"):
                    data = payload.get("data") if payload else None
                    self.outcomes.append(
                        {"kind": kind, "status": status, "body": body, "data": data}
                    )
                    if status == 200:
                        self.seen(kind, data or {})
                    break
                self.server_errors += status is not None and status >= 500
                if status not in (None, 409, 500, 502, 503) or (
                    status == 409 and code != "request_in_progress"
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
            "server_errors": self.server_errors,
            "unresolved": self.unresolved,
            "outcomes": self.outcomes,
        }


def client_process(args) -> dict:
    base, shop, seed, stop_at, drain_until = args
    return Client(base, shop, seed, stop_at, drain_until).run()


class Lifecycle(threading.Thread):
    """Runs `release_cashback` and `expire_cashback` over and over, as an operator would, with
    `--as-of` days ahead so that held cashback is released and lots expire during the drill;
    every other expiry run is as of now, which sends the expiry warnings due."""

    def __init__(self, env: dict):
        super().__init__(daemon=True)
        self.env = env
        self.stopping = threading.Event()
        # Held by each run: pausing takes it, so that nothing runs until the pause ends.
        self.running = threading.Lock()
        self.totals: Counter[str] = Counter()
        self.problems: list[str] = []

    def command(self, name: str, as_of: datetime) -> None:
        run = manage(self.env, name, "--as-of", as_of.isoformat(), "--json", capture=True)
        self.totals[name] += 1
        if run.returncode != 0:
            self.problems.append(f"{name} exited {run.returncode}: {run.stderr.strip()[-500:]}")
            return
        for field, value in json.loads(run.stdout).items():
            if field != "amount":  # the counts: released, expired, warned
                self.totals[field] += int(value)

    def run(self) -> None:
        turn = 0
        while not self.stopping.is_set():
            with self.running:
                now = datetime.now(UTC)
                self.command("release_cashback", now + timedelta(days=3))
                self.command("expire_cashback", now + timedelta(days=3) if turn % 2 else now)
            turn += 1
            time.sleep(0.01)

    def settle(self) -> datetime:
        """Stops the runs, then releases and expires once more what is due by then."""
        self.stopping.set()
        self.join()
        as_of = datetime.now(UTC) + timedelta(days=3)
        self.command("release_cashback", as_of)
        self.command("expire_cashback", as_of)
        return as_of


def probe_lifecycle(probe: dict, lifecycle: Lifecycle) -> tuple[float, float]:
    """With the operator's runs paused, makes one of the probe tenant's lots due and one
    expired, and waits for the worker to release and expire them; returns how long each
    took (seconds), or the timeout's end when it did not come."""
    from django.utils import timezone

    from cashback.models import EntryType, LedgerEntry, Lot
    from cashback.services import cashback_earn
    from members.services import MemberRef

    ref = MemberRef(member_id=probe["member"].pk)
    took = []
    with lifecycle.running:
        for card, field, entry_type in (
            (probe["held"], "available_at", EntryType.RELEASE),
            (probe["expiring"], "expires_at", EntryType.EXPIRATION),
        ):
            earning = cashback_earn(
                app=probe["app"], card=card, member_ref=ref, purchase_amount=Decimal(100)
            ).entry
            due = time.monotonic()
            Lot.objects.filter(source=earning).update(
                **{field: timezone.now() - timedelta(seconds=1)}
            )
            deadline = due + LIFECYCLE_WITHIN * 3
            done = LedgerEntry.objects.filter(
                app_id=probe["app"].pk, entry_type=entry_type, original_entry=earning
            )
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            took.append(time.monotonic() - due)
    return took[0], took[1]


class Worker:
    """`manage.py worker`, killed and started again."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None
        self.killed: list[int] = []

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(
                [PYTHON, "manage.py", "worker"],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=out,
            )

    def kill(self) -> None:
        if self.process is None:
            raise RuntimeError("no worker to kill")
        self.process.kill()  # SIGKILL
        self.process.wait()
        self.killed.append(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=WEBHOOK_TIMEOUT + 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def logged_errors(log: Path) -> list[str]:
    """The errors the server and the worker logged (one JSON object per line), tracebacks
    included; gunicorn's own lines about the worker the drill killed are not among them."""
    return [
        line.strip()[:300]
        for line in log.read_text(errors="replace").splitlines()
        if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line or "Traceback" in line
    ]


def verify_ledger(env: dict) -> tuple[list[str], int]:
    """Runs `manage.py verify_ledger --json`, as an operator would."""
    run = manage(env, "verify_ledger", "--json", capture=True)
    report = json.loads(run.stdout)
    problems = [f"verify_ledger: {m['wallet_id']} {m['problem']}" for m in report["mismatches"]]
    if run.returncode != 0 and not problems:
        problems.append(f"verify_ledger exited {run.returncode}: {run.stderr.strip()}")
    return problems, report["wallets_checked"]


def told_moves(kind: str, data: dict) -> tuple[Decimal, Decimal]:
    """What a client was told an operation moved: (spendable, pending)."""
    if kind == "earn":
        earned = Decimal(str(data["cashback_earned"]))
        return (Decimal(0), earned) if data["status"] == "pending" else (earned, Decimal(0))
    if kind == "redeem":
        return -Decimal(str(data["amount_redeemed"])), Decimal(0)
    if kind == "refund":
        pending = Decimal(str(data["pending_deducted"]))
        return -(Decimal(str(data["cashback_deducted"])) - pending), -pending
    # A reversal: what it gave back, less what it took for the claims of refunds since.
    return Decimal(str(data["amount"])) - Decimal(str(data["recovered_amount"])), Decimal(0)


def reconcile(
    outcomes: list[dict], settled_as_of: datetime, app_pk: int
) -> tuple[list[str], Counter[str]]:
    """Compares the fault tenant's ledger with what its clients were told; returns the
    mismatches and the entries by type."""
    from cashback.models import EntryType, LedgerEntry, Lot, Wallet

    problems = []
    kinds = {
        "earn": EntryType.EARNING,
        "redeem": EntryType.REDEMPTION,
        "refund": EntryType.REFUND,
        "reverse": EntryType.REVERSAL,
    }
    told: dict[int, tuple[str, Decimal, Decimal]] = {}
    ids = []
    expected: dict[tuple[int, int], list[Decimal]] = {}
    held_earnings = set()
    for outcome in outcomes:
        if outcome["status"] != 200:
            continue
        data = outcome["data"]
        ids.append(data["transaction_id"])
        spendable, pending = told_moves(outcome["kind"], data)
        told[data["transaction_id"]] = (kinds[outcome["kind"]], spendable, pending)
        sums = expected.setdefault((data["member_id"], data["card_id"]), [Decimal(0)] * 2)
        sums[0] += spendable
        sums[1] += pending
        if outcome["kind"] == "earn" and pending:
            held_earnings.add(data["transaction_id"])

    if len(ids) != len(set(ids)):
        problems.append("one transaction_id was reported for two operations")
    entries = {
        e["id"]: e
        for e in LedgerEntry.objects.filter(app_id=app_pk).values(
            "id",
            "entry_type",
            "amount",
            "pending_amount",
            "original_entry_id",
            "wallet__member_id",
            "card_id",
        )
    }
    by_type = Counter(e["entry_type"] for e in entries.values())
    posted_by_service = {EntryType.RELEASE, EntryType.EXPIRATION}
    for missing in set(told) - set(entries):
        problems.append(f"transaction {missing} was reported but is not in the ledger")
    for entry_id, entry in entries.items():
        if entry["entry_type"] in posted_by_service:
            # A release or expiration of an earning a client saw; it moves the wallet too.
            source = entry["original_entry_id"]
            if source not in told or told[source][0] != EntryType.EARNING:
                problems.append(f"{entry['entry_type']} {entry_id} names no earning a client saw")
            elif entry["entry_type"] == EntryType.RELEASE and source not in held_earnings:
                problems.append(f"release {entry_id} of an earning that was not held")
            sums = expected.setdefault(
                (entry["wallet__member_id"], entry["card_id"]), [Decimal(0)] * 2
            )
            sums[0] += entry["amount"]
            sums[1] += entry["pending_amount"]
            continue
        if entry_id not in told:
            problems.append(f"ledger entry {entry_id} matches no operation a client saw succeed")
            continue
        kind, spendable, pending = told[entry_id]
        moved = (entry["entry_type"], entry["amount"], entry["pending_amount"])
        if moved != (kind, spendable, pending):
            problems.append(f"entry {entry_id} is {moved}, the client saw {told[entry_id]}")
    releases = Counter(
        e["original_entry_id"] for e in entries.values() if e["entry_type"] == EntryType.RELEASE
    )
    for earning, count in releases.items():
        if count > 1:
            problems.append(f"earning {earning} was released {count} times")
    for wallet in Wallet.objects.filter(app_id=app_pk):
        spendable, pending = expected.get((wallet.member_id, wallet.card_id), [Decimal(0)] * 2)
        if (wallet.balance, wallet.pending_balance) != (spendable, pending):
            problems.append(
                f"wallet {wallet.pk}: balance {wallet.balance} (pending {wallet.pending_balance})"
                f", the ledger as the clients saw it adds up to {spendable} (pending {pending})"
            )
    due = Lot.objects.filter(app_id=app_pk, pending__gt=0, available_at__lte=settled_as_of).count()
    if due:
        problems.append(f"{due} lots still held after the last release")
    overdue = Lot.objects.filter(
        app_id=app_pk, remaining__gt=0, expires_at__lte=settled_as_of
    ).count()
    if overdue:
        problems.append(f"{overdue} lots still spendable after the last expiry")
    return problems, by_type


def drain(timeout: float, endpoint_id: int) -> int:
    """Waits until no delivery to the endpoint is pending; returns how many still are."""
    from webhooks.models import DeliveryStatus, WebhookDelivery

    deadline = time.monotonic() + timeout
    while True:
        pending = WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id, status=DeliveryStatus.PENDING
        ).count()
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def stalled_pending(app_pk: int) -> int:
    from webhooks.models import DeliveryStatus, WebhookDelivery

    return WebhookDelivery.objects.filter(app_id=app_pk, status=DeliveryStatus.PENDING).count()


def check_webhooks(receiver: Receiver, endpoint_id: int, app_pk: int) -> tuple[list[str], dict]:
    """Every entry of the fault tenant has its one event, and every expiry warning; each event
    has one delivery to the endpoint, delivered, first attempted within seconds of being
    recorded (`FIRST_ATTEMPT_P99`, `FIRST_ATTEMPT_MAX`); the receiver acknowledged every event's
    webhook-id and saw none other, each signature valid."""
    from cashback.models import LedgerEntry, Lot
    from webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEvent

    problems = []
    events = {e.public_id: e for e in WebhookEvent.objects.filter(app_id=app_pk)}
    told_of: Counter[int] = Counter()
    warnings = 0
    for event in events.values():
        data = json.loads(event.body)["data"]
        if event.event_type == EventType.EXPIRING:
            warnings += 1
        else:
            told_of[data["transaction_id"]] += 1
    entry_ids = set(LedgerEntry.objects.filter(app_id=app_pk).values_list("id", flat=True))
    for entry_id in entry_ids - set(told_of):
        problems.append(f"ledger entry {entry_id} has no event")
    for entry_id in set(told_of) - entry_ids:
        problems.append(f"an event tells of entry {entry_id}, which is not in the ledger")
    problems += [f"entry {e} has {n} events" for e, n in told_of.items() if n > 1]
    warned = Lot.objects.filter(app_id=app_pk, warned_at__isnull=False).count()
    if warnings != warned:
        problems.append(f"{warnings} expiry warnings recorded, {warned} lots warned")

    deliveries = WebhookDelivery.objects.filter(endpoint_id=endpoint_id)
    statuses = Counter(deliveries.values_list("status", flat=True))
    if deliveries.count() != len(events):
        problems.append(f"{deliveries.count()} deliveries for {len(events)} events")
    for status, count in statuses.items():
        if status != DeliveryStatus.DELIVERED:
            problems.append(f"{count} deliveries {status}")
    attempts = sum(deliveries.values_list("attempts", flat=True))
    waits = sorted(
        (first - created).total_seconds()
        for first, created in deliveries.values_list("first_attempt_at", "event__created_at")
        if first is not None
    )
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] if waits else 0.0
    if p99 > FIRST_ATTEMPT_P99 or (waits and waits[-1] > FIRST_ATTEMPT_MAX):
        problems.append(
            f"events first attempted after {p99:.1f}s (p99) and {waits[-1]:.1f}s at the latest: "
            f"more than {FIRST_ATTEMPT_P99:g}s and {FIRST_ATTEMPT_MAX:g}s"
        )

    missing = set(events) - receiver.acknowledged
    unknown = set(receiver.received) - set(events)
    if missing:
        problems.append(f"{len(missing)} events never acknowledged by the receiver")
    if unknown:
        problems.append(f"the receiver got {len(unknown)} webhook-ids of no event")
    if receiver.bad_signatures:
        problems.append(f"{len(receiver.bad_signatures)} POSTs with a bad signature")
    wrong_type = [i for i, t in receiver.types.items() if i in events and events[i].event_type != t]
    if wrong_type:
        problems.append(f"{len(wrong_type)} events received with another type")
    posts = sum(receiver.received.values())
    return problems, {
        "events": len(events),
        "warnings": warnings,
        "statuses": statuses,
        "failed_attempts": attempts - statuses[DeliveryStatus.DELIVERED],
        "posts": posts,
        "distinct": len(receiver.received),
        "duplicates": posts - len(receiver.received),
        "first_attempt": (
            waits[len(waits) // 2] if waits else 0.0,
            p99,
            waits[-1] if waits else 0.0,
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of load")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--database-url", default=default_database_url())
    options = parser.parse_args()

    database = options.database_url.rsplit("/", 1)[1]
    env = production_env(
        options.database_url,
        f"fault-drill-{database}",
        IDEMPOTENCY_LEASE_SECONDS="3",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="ERROR",
        **SERVER_SETTINGS,
    )
    recreate_database(options.database_url)
    deploy(env)
    setup_django(env)

    log = Path(tempfile.gettempdir()) / f"cashback-fault-drill-{database}.log"
    log.write_text("")
    receiver = Receiver(seed=0)
    stalled_address = StalledAddress()
    shop = prepare(options.members, receiver.url)
    stalled = prepare_stalled(stalled_address.url)
    probe = prepare_probe()
    receiver.webhook = Webhook(shop["secret"])
    worker = Worker(env, log)
    lifecycle = Lifecycle(env)
    in_flight = 0
    probes: list[tuple[float, float]] = []
    with (
        receiver,
        gunicorn("config.wsgi", env, workers=2, health="/healthz", log=log) as (base, server),
    ):
        worker.start()
        started = time.monotonic()
        stop_at = started + options.duration
        drain_until = stop_at + 60
        lifecycle.start()
        stalled_till = StalledTenant(base, stalled)
        stalled_till.start()
        with multiprocessing.get_context("spawn").Pool(options.clients) as pool:
            jobs = pool.map_async(
                client_process,
                [(base, shop, seed, stop_at, drain_until) for seed in range(options.clients)],
            )
            time.sleep(options.duration * 0.2)
            probes.append(probe_lifecycle(probe, lifecycle))
            time.sleep(max(started + options.duration * 0.3 - time.monotonic(), 0))
            victim = worker_pids(server.pid)[0]
            os.kill(victim, signal.SIGKILL)
            for at in (0.45, 0.75):
                time.sleep(max(started + options.duration * at - time.monotonic(), 0))
                in_flight += receiver.hold(timeout=10)  # a delivery is in flight: kill now
                worker.kill()
                worker.start()
                if at == 0.45:
                    time.sleep(3)  # the new worker up, under the stalled tenant's backlog
                    probes.append(probe_lifecycle(probe, lifecycle))
            respawned = [pid for pid in worker_pids(server.pid) if pid != victim]
            results = jobs.get(timeout=options.duration + 120)
        stalled_till.stopping.set()
        stalled_till.join()
        settled_as_of = lifecycle.settle()
        drain_started = time.monotonic()
        still_pending = drain(DRAIN_TIMEOUT, shop["endpoint_id"])
        drained_in = time.monotonic() - drain_started
        stalled_backlog = stalled_pending(stalled["pk"])
        worker.stop()
    stalled_address.close()

    outcomes = [o for r in results for o in r["outcomes"]]
    ledger_problems, wallets = verify_ledger(env)
    mismatches, by_type = reconcile(outcomes, settled_as_of, shop["pk"])
    hook_problems, hooks = check_webhooks(receiver, shop["endpoint_id"], shop["pk"])
    problems = ledger_problems + mismatches + lifecycle.problems + hook_problems
    for released_in, expired_in in probes:
        if max(released_in, expired_in) > LIFECYCLE_WITHIN:
            problems.append(
                f"the worker released the probe's lot after {released_in:.1f}s and expired "
                f"the other after {expired_in:.1f}s (more than {LIFECYCLE_WITHIN:g}s)"
            )
    if stalled_backlog < STALLED_ENDPOINTS:
        problems.append(
            f"the stalled tenant had {stalled_backlog} deliveries pending: it did not stall"
        )
    if still_pending:
        problems.append(f"{still_pending} deliveries still pending after {DRAIN_TIMEOUT}s")
    server_errors = sum(r["server_errors"] for r in results)
    if server_errors:
        problems.append(f"the server answered {server_errors} requests with a 5xx")
    problems += [f"logged: {line}" for line in logged_errors(log)]
    unresolved = sum(r["unresolved"] for r in results)
    if unresolved:
        problems.append(f"{unresolved} operations never got an answer")
    ok = sum(o["status"] == 200 for o in outcomes)
    verdict = "PASS" if not problems else "FAIL"
    for problem in problems[:20]:
        print(f"  mismatch: {problem}")
    totals = lifecycle.totals
    print(
        f"FAULT DRILL {verdict}: {options.duration:g}s, {options.clients} clients; "
        f"operations {len(outcomes)}, ledger entries {sum(by_type.values())}, "
        f"events {hooks['events']}, each delivered {hooks['statuses']['delivered']}; "
        f"mismatches {len(problems)}"
    )
    print(
        f"  requests: sent {sum(r['sent'] for r in results)}, "
        f"retried {sum(r['retried'] for r in results)}, "
        f"cut off {sum(r['cut_off'] for r in results)}; operations {len(outcomes)} "
        f"({ok} succeeded, {len(outcomes) - ok} business errors)"
    )
    print(
        "  entries: "
        + ", ".join(f"{kind} {by_type[kind]}" for kind in sorted(by_type))
        + f" in {wallets} wallets; verify_ledger mismatches {len(ledger_problems)}"
    )
    print(
        f"  lifecycle: release_cashback ran {totals['release_cashback']} times "
        f"(released {totals['released']}), expire_cashback {totals['expire_cashback']} "
        f"(expired {totals['expired']}, warned {totals['warned']})"
    )
    print(
        f"  webhooks: events {hooks['events']} ({hooks['warnings']} expiry warnings), "
        f"deliveries {dict(hooks['statuses'])}, failed attempts {hooks['failed_attempts']}; "
        f"receiver got {hooks['posts']} POSTs for {hooks['distinct']} webhook-ids "
        f"({hooks['duplicates']} duplicates), answered {receiver.failed} with 500 and "
        f"{receiver.late} too late, bad signatures {len(receiver.bad_signatures)}; "
        f"drained in {drained_in:.1f}s"
    )
    first = hooks["first_attempt"]
    print(
        f"  fairness: the stalled tenant earned {stalled_till.earned} times for "
        f"{STALLED_ENDPOINTS} endpoints that never answer, {stalled_backlog} of its deliveries "
        f"still pending at the end; this tenant's events first attempted after "
        f"{first[0]:.2f}s (p50), {first[1]:.2f}s (p99), {first[2]:.2f}s (max); the worker "
        "released and expired the probe's lots after "
        + ", ".join(f"{r:.1f}s and {e:.1f}s" for r, e in probes)
    )
    print(
        f"  kills: gunicorn worker 1 (pid {victim}, {len(respawned)} running after); "
        f"background worker {len(worker.killed)} (pids {', '.join(map(str, worker.killed))}; "
        f"{in_flight} with a delivery in flight)"
    )
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())

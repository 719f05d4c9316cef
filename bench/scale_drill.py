"""Scale drill: the service through PgBouncer (transaction pooling) with a streaming read replica,
built from nothing on this machine, under load, while the replica stops and the primary
restarts.

    make scale-drill      # or: .venv/bin/python bench/scale_drill.py [--duration 12] [--faults 40]

It starts its own PostgreSQL primary (`initdb`, on a free port, in a temporary folder), a
streaming replica of it (`pg_basebackup -R`, WAL streaming) and PgBouncer in transaction pooling
in front of both (`default_pool_size` 20; Debian's package, installed with apt-get when missing,
as wrk is), and removes them all when it ends, whatever the outcome. The service runs under
gunicorn with 2 workers of 100 threads each, so 200 concurrent clients hold 200 database
connections.

1. Throughput: wrk drives the benchmark's mixed load (earn, balance and history of random
   members; bench/run.py) with 200 connections, first on a single server (the service straight
   to the primary, 200 server sessions, no replica), then through PgBouncer with the replica
   (DATABASE_POOLER=transaction, DATABASE_REPLICA_URL). Meanwhile it counts PgBouncer's clients
   and server sessions and the primary's sessions (pg_stat_activity), and measures the
   replica's lag: how long until the replica has replayed what the primary had written at a
   given moment.
2. Faults: client threads earn under an Idempotency-Key and a reference each, read the member's
   balance right after (read-your-writes: it must show the earn) and read another member's
   balance and history. A third of the way in the replica is stopped (reads go on, on the
   primary); past half-way the primary is stopped for a few seconds and started again. A 503
   must carry Retry-After and is retried with the same key; no answer at all is retried too.

It prints the throughput of both set-ups, the connections, the replica's lag (p50, p99), the
reads the replica served (pg_stat_statements on the replica), the answers (500s and other errors
must be 0; 503s are counted apart), that every key made exactly one ledger entry,
`verify_ledger` and the read-your-writes check; and exits 1 if any of them fails.
"""

import argparse
import json
import os
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
from dataclasses import dataclass, field
from pathlib import Path
from statistics import quantiles

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from django.db import connections

from bench.harness import deploy, free_port, gunicorn, manage, production_env, setup_django
from bench.postgres import (
    Cluster,
    apt_install,
    basebackup,
    ensure_pgbouncer,
    initdb,
    pgbouncer,
    remove_folder,
    server_folder,
)
from bench.run import lua_script, prepare, wrk

DATABASE = "cashback_scale"
REPLICA_DATABASE = "cashback_scale_replica"  # PgBouncer's name for the replica's copy
API = "/api/v1/cashback/cashback"
THREADS = 100  # per gunicorn worker
WORKERS = 2


def ensure_wrk() -> None:
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode != 0:
        apt_install("wrk")


def redis_url() -> dict:
    """The shared cache (read-your-writes marks, throttle): Redis when one answers here."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", 6379)) == 0:
            return {"REDIS_URL": os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379/12")}
    return {}


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return quantiles(values, n=100, method="inclusive")[q - 1]


# --- what is watched during the pooled run -------------------------------------------------


@dataclass
class Watch:
    lag_ms: list[float] = field(default_factory=list)
    clients: int = 0  # PgBouncer's clients of the primary's pool, at most
    servers: int = 0  # its server sessions to the primary, at most
    replica_clients: int = 0
    replica_servers: int = 0
    primary_sessions: int = 0  # the primary's client backends on the database (pg_stat_activity)
    stop: threading.Event = field(default_factory=threading.Event)


def watch_pools(watch: Watch, admin_url: str) -> None:
    """PgBouncer's clients and server sessions, by pool, at most."""
    # The admin console speaks the simple protocol only: nothing prepared.
    with psycopg.connect(admin_url, autocommit=True, prepare_threshold=None) as admin:
        while not watch.stop.wait(0.2):
            cursor = admin.execute("SHOW POOLS")
            columns = [c.name for c in cursor.description or ()]
            for row in cursor:
                pool = dict(zip(columns, row, strict=True))
                clients = pool["cl_active"] + pool["cl_waiting"]
                servers = sum(
                    pool[k] for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
                )
                if pool["database"] == DATABASE:
                    watch.clients = max(watch.clients, clients)
                    watch.servers = max(watch.servers, servers)
                elif pool["database"] == REPLICA_DATABASE:
                    watch.replica_clients = max(watch.replica_clients, clients)
                    watch.replica_servers = max(watch.replica_servers, servers)


def watch_sessions(watch: Watch, primary: Cluster) -> None:
    """The primary's sessions on the database, at most (pg_stat_activity)."""
    with psycopg.connect(primary.url(), autocommit=True) as server:
        while not watch.stop.wait(0.2):
            (sessions,) = server.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND backend_type = 'client backend'",
                [DATABASE],
            ).fetchone() or (0,)
            watch.primary_sessions = max(watch.primary_sessions, sessions)


def watched(watch: Watch, *watchers) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(watch, *args)) for target, *args in watchers]
    for thread in threads:
        thread.start()
    return threads


def unwatch(watch: Watch, threads: list[threading.Thread]) -> None:
    watch.stop.set()
    for thread in threads:
        thread.join()


def watch_lag(watch: Watch, primary: Cluster, replica: Cluster) -> None:
    """How long until the replica has replayed what the primary had written at a moment."""
    with (
        # On another database than the service's, not to count among its sessions: WAL
        # positions are the server's.
        psycopg.connect(primary.url(), autocommit=True) as on_primary,
        psycopg.connect(replica.url(), autocommit=True) as on_replica,
    ):
        while not watch.stop.wait(0.1):
            (lsn,) = on_primary.execute("SELECT pg_current_wal_lsn()::text").fetchone() or ("",)
            started = time.monotonic()
            while time.monotonic() - started < 10:
                row = on_replica.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]
                ).fetchone()
                if row and row[0]:
                    watch.lag_ms.append((time.monotonic() - started) * 1000)
                    break
                time.sleep(0.001)


def many_clients(url: str, clients: int, transactions: int = 10) -> int:
    """`clients` connections to PgBouncer at once, each running `transactions` short
    transactions of the service's kind (a wallet read while the transaction is open); returns
    how many were connected together."""
    connected = threading.Barrier(clients + 1)

    def one() -> None:
        with psycopg.connect(url, prepare_threshold=None) as conn:
            connected.wait()
            for _ in range(transactions):
                with conn.transaction():
                    conn.execute("SELECT sum(balance) FROM cashback_wallet")
                    conn.execute("SELECT pg_sleep(0.02)")

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    connected.wait()
    for thread in threads:
        thread.join()
    return clients


def replica_reads(replica: Cluster) -> dict[str, int]:
    """The service's queries the replica answered, by table (pg_stat_statements)."""
    with psycopg.connect(replica.url(DATABASE), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query, calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = %s AND query LIKE %s",
            [DATABASE, "%cashback_%"],
        ).fetchall()
    counts: Counter = Counter()
    for query, calls in rows:
        kind = "history" if "cashback_ledgerentry" in query else "balance"
        counts[kind] += calls
    return dict(counts)


# --- the fault phase's clients ---------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)
    unanswered: int = 0
    without_retry_after: int = 0
    retried_keys: set = field(default_factory=set)
    earned: dict = field(default_factory=dict)  # key: transaction id
    ryw_checked: int = 0
    ryw_mismatches: list = field(default_factory=list)
    in_progress: int = 0  # 409 request_in_progress, retried
    reads: int = 0
    read_errors: int = 0
    reads_after_replica_stop: int = 0
    other_errors: list = field(default_factory=list)


def call(base: str, path: str, headers: dict, body: dict | None, tally: Tally, key=None):
    """Sends until the service answers other than 503; returns (status, body)."""
    data = None if body is None else json.dumps(body).encode()
    while True:
        request = urllib.request.Request(
            base + path, data=data, headers={**headers, "Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, answer = response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, json.loads(exc.read() or b"{}")
            retry_after = exc.headers.get("Retry-After")
        except OSError:
            with tally.lock:
                tally.unanswered += 1
                if key:
                    tally.retried_keys.add(key)
            time.sleep(0.2)
            continue
        with tally.lock:
            tally.statuses[status] += 1
        if status == 409 and answer.get("error", {}).get("code") == "request_in_progress":
            # A claim made just before the database went away holds the key until its lease
            # ends (IDEMPOTENCY_LEASE_SECONDS): "retry shortly", as a till would.
            with tally.lock:
                tally.in_progress += 1
            time.sleep(1)
            continue
        if status != 503:
            return status, answer
        with tally.lock:
            if key:
                tally.retried_keys.add(key)
            if retry_after is None:
                tally.without_retry_after += 1
        time.sleep(min(float(retry_after or 1), 1.0))


def client(
    n: int,
    base: str,
    headers: dict,
    shop: dict,
    members: list[int],
    until: float,
    tally: Tally,
    replica_stopped: threading.Event,
) -> None:
    card = shop["card_id"]
    sale = 0
    while time.monotonic() < until:
        member = members[sale % len(members)]
        other = members[(sale + len(members) // 2) % len(members)]
        key = f"scale-{n}-{sale}"
        sale += 1
        body = {"card_id": card, "member_id": member, "purchase_amount": 40, "reference": key}
        status, answer = call(
            base, f"{API}/earn", {**headers, "Idempotency-Key": key}, body, tally, key
        )
        if status != 200:
            with tally.lock:
                tally.other_errors.append((status, answer))
            continue
        with tally.lock:
            tally.earned[key] = answer["data"]["transaction_id"]
        # Read-your-writes: the balance right after the earn shows it.
        status, read = call(
            base, f"{API}/balance?card_id={card}&member_id={member}", headers, None, tally
        )
        with tally.lock:
            tally.ryw_checked += 1
            if status != 200:
                tally.other_errors.append((status, read))
            elif read["data"]["cashback_balance"] != answer["data"]["new_balance"]:
                tally.ryw_mismatches.append((member, answer["data"], read["data"]))
        # Another member's reads, which the replica may serve.
        for path in (
            f"{API}/balance?card_id={card}&member_id={other}",
            f"{API}/history?card_id={card}&member_id={other}&limit=20",
        ):
            status, read = call(base, path, headers, None, tally)
            with tally.lock:
                tally.reads += 1
                if replica_stopped.is_set():
                    tally.reads_after_replica_stop += 1
                if status != 200:
                    tally.read_errors += 1
                    tally.other_errors.append((status, read))


# --- the drill -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=12, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=WORKERS * THREADS)
    parser.add_argument("--pool-size", type=int, default=20, help="PgBouncer default_pool_size")
    parser.add_argument("--faults", type=int, default=40, help="seconds of the fault phase")
    parser.add_argument("--clients", type=int, default=12, help="fault phase client threads")
    parser.add_argument("--down", type=float, default=6, help="seconds the primary is down")
    parser.add_argument("--members", type=int, default=200)
    options = parser.parse_args()

    # A stop (SIGTERM, Ctrl-C) unwinds through the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ensure_wrk()
    ensure_pgbouncer()
    folder = server_folder("cashback-scale-")
    clusters: list[Cluster] = []
    try:
        return drill(options, folder, clusters)
    finally:
        for cluster in reversed(clusters):
            cluster.stop_quietly()
        remove_folder(folder)


def drill(options, folder: Path, clusters: list[Cluster]) -> int:
    started = time.monotonic()
    primary = initdb(
        folder,
        free_port(),
        max_connections=str(options.connections + 60),
        shared_preload_libraries="'pg_stat_statements'",
    )
    clusters.append(primary)
    subprocess.run(["psql", primary.url(), "-q", "-c", f"CREATE DATABASE {DATABASE}"], check=True)
    subprocess.run(
        ["psql", primary.url(DATABASE), "-q", "-c", "CREATE EXTENSION pg_stat_statements"],
        check=True,
    )
    replica = basebackup(primary, folder, free_port())
    clusters.append(replica)
    log = Path(tempfile.gettempdir()) / "cashback-scale-drill.log"
    log.write_text("")
    direct = production_env(primary.url(DATABASE), "scale", LOG_LEVEL="WARNING", **redis_url())
    deploy(direct)
    setup_django(direct)
    shop = prepare(options.members, entries_each=3)
    connections.close_all()  # the service's sessions alone are counted on the database
    subprocess.run(["psql", primary.url(DATABASE), "-q", "-c", "VACUUM ANALYZE"], check=True)
    headers = {
        "X-App-Id": shop["app_id"],
        "X-Api-Key": shop["api_key"],
        "X-Forwarded-Proto": "https",
    }
    paths = {"earn": f"{API}/earn", "balance": f"{API}/balance", "history": f"{API}/history"}
    script = lua_script("mixed", shop, headers, paths)
    gthread = ["--worker-class=gthread", f"--threads={THREADS}"]

    def serve(env: dict):
        return gunicorn(
            "config.wsgi", env, workers=WORKERS, health="/healthz", log=log, args=gthread
        )

    print(
        f"scale drill: primary 127.0.0.1:{primary.port}, replica :{replica.port} "
        f"(pg_basebackup -R), in {folder}; server log {log}",
        flush=True,
    )
    with serve(direct) as (base, _):
        wrk(base, script, duration=2, connections=options.connections)
        single_watch = Watch()
        threads = watched(single_watch, (watch_sessions, primary))
        single = wrk(base, script, duration=options.duration, connections=options.connections)
        unwatch(single_watch, threads)
    print(f"  single server: {single.rps:.0f} rps, errors {single.errors}", flush=True)

    databases = {
        DATABASE: f"host=127.0.0.1 port={primary.port} dbname={DATABASE}",
        REPLICA_DATABASE: f"host=127.0.0.1 port={replica.port} dbname={DATABASE}",
    }
    with pgbouncer(folder, free_port(), databases, default_pool_size=str(options.pool_size)) as (
        bouncer
    ):
        pooled_env = {
            **direct,
            "DATABASE_URL": bouncer.url(DATABASE),
            "DATABASE_REPLICA_URL": bouncer.url(REPLICA_DATABASE),
            "DATABASE_POOLER": "transaction",
        }
        with serve(pooled_env) as (base, _):
            wrk(base, script, duration=2, connections=options.connections)
            watch = Watch()
            threads = watched(
                watch,
                (watch_pools, bouncer.admin_url()),
                (watch_sessions, primary),
                (watch_lag, primary, replica),
            )
            pooled = wrk(base, script, duration=options.duration, connections=options.connections)
            unwatch(watch, threads)
            # Then as many clients at once as wrk had connections, each with its own session.
            crowd = Watch()
            threads = watched(crowd, (watch_pools, bouncer.admin_url()), (watch_sessions, primary))
            many_clients(bouncer.url(DATABASE), options.connections)
            unwatch(crowd, threads)
            load_reads = replica_reads(replica)
            print(
                f"  through PgBouncer with the replica: {pooled.rps:.0f} rps, errors "
                f"{pooled.errors}; now the faults ({options.faults}s)",
                flush=True,
            )
            faults = fault_phase(options, base, headers, shop, primary, replica)

    elapsed = time.monotonic() - started
    return report(
        options,
        (single, single_watch),
        (pooled, watch),
        crowd,
        load_reads,
        faults,
        direct,
        elapsed,
    )


@dataclass
class Faults:
    tally: Tally
    replica_reads: dict[str, int]
    replica_stopped_at: float
    primary_stopped_at: float
    primary_back_at: float


def fault_phase(options, base, headers, shop, primary: Cluster, replica: Cluster) -> Faults:
    tally = Tally()
    replica_stopped = threading.Event()
    begin = time.monotonic()
    until = begin + options.faults
    first = shop["first_member"]
    per = max(1, shop["members"] // options.clients)
    clients = [
        threading.Thread(
            target=client,
            args=(
                n,
                base,
                headers,
                shop,
                list(range(first + n * per, first + (n + 1) * per)),
                until,
                tally,
                replica_stopped,
            ),
        )
        for n in range(options.clients)
    ]
    for thread in clients:
        thread.start()
    time.sleep(options.faults / 3)
    reads = replica_reads(replica)
    replica.stop()
    replica_stopped.set()
    replica_stopped_at = time.monotonic() - begin
    print(f"  {replica_stopped_at:.0f}s: replica stopped", flush=True)
    time.sleep(max(0.0, begin + options.faults * 0.55 - time.monotonic()))
    primary.stop()
    primary_stopped_at = time.monotonic() - begin
    print(f"  {primary_stopped_at:.0f}s: primary stopped", flush=True)
    time.sleep(options.down)
    primary.start()
    primary_back_at = time.monotonic() - begin
    print(f"  {primary_back_at:.0f}s: primary started", flush=True)
    for thread in clients:
        thread.join()
    return Faults(tally, reads, replica_stopped_at, primary_stopped_at, primary_back_at)


def report(
    options, single_run, pooled_run, crowd: Watch, load_reads, faults: Faults, direct, elapsed
) -> int:
    (single, single_watch), (pooled, watch) = single_run, pooled_run
    from django.db.models import Count

    from cashback.models import LedgerEntry

    connections.close_all()  # the primary restarted since this process's last query
    tally = faults.tally
    entries: dict[str | None, int] = {
        row["reference"]: row["n"]
        for row in LedgerEntry.objects.filter(reference__startswith="scale-")
        .values("reference")
        .annotate(n=Count("id"))
    }
    ids = dict(
        LedgerEntry.objects.filter(reference__startswith="scale-").values_list("reference", "id")
    )
    once = sum(1 for key in tally.earned if entries.get(key) == 1)
    stray = set(entries) - set(tally.earned)
    wrong_ids = [key for key, tid in tally.earned.items() if ids.get(key) != tid]
    ledger = json.loads(manage(direct, "verify_ledger", "--json", capture=True).stdout)
    served = {
        k: load_reads.get(k, 0) + faults.replica_reads.get(k, 0) for k in ("balance", "history")
    }
    server_errors = sum(
        n for status, n in tally.statuses.items() if status >= 500 and status != 503
    )
    checks = {
        "wrk errors": single.errors + pooled.errors == 0,
        "500s": server_errors == 0,
        "other errors": not tally.other_errors,
        "503 without Retry-After": tally.without_retry_after == 0,
        "exactly one entry per key": once == len(tally.earned) and not stray and not wrong_ids,
        "verify_ledger": not ledger["mismatches"],
        "read-your-writes": not tally.ryw_mismatches and tally.ryw_checked > 0,
        "replica served reads": served["balance"] + served["history"] > 0,
        "reads after the replica stopped": tally.reads_after_replica_stop > 0,
        f"server sessions <= {options.pool_size}": 0 < watch.servers <= options.pool_size
        and crowd.clients >= options.connections
        and 0 < crowd.servers <= options.pool_size
        and crowd.primary_sessions <= options.pool_size,
    }
    failed = [name for name, ok in checks.items() if not ok]
    verdict = "PASS" if not failed else "FAIL (" + ", ".join(failed) + ")"
    codes = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
    errors = len(tally.other_errors) + single.errors + pooled.errors
    lag = watch.lag_ms
    before_stop = {k: faults.replica_reads.get(k, 0) - load_reads.get(k, 0) for k in served}
    lines = [
        "",
        f"SCALE DRILL {verdict}: {elapsed:.0f}s in all; errors {errors}, "
        f"500s {server_errors}, 503s {tally.statuses[503]}",
        f"  throughput, the benchmark's mixed earn/balance/history, wrk {options.connections} "
        f"connections, {options.duration}s, gunicorn {WORKERS} workers x {THREADS} threads:",
    ]
    for name, result in (
        ("single server (straight to PostgreSQL, no replica)", single),
        ("PgBouncer (transaction pooling) + replica", pooled),
    ):
        lines.append(
            f"    {name:<51} {result.rps:5.0f} rps  p50 {result.p50_ms:7.2f} ms  "
            f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
        )
    lines += [
        f"    ratio {pooled.rps / single.rps:.2f}",
        f"  connections: under wrk, the service's {watch.clients} connections to PgBouncer "
        f"(one per gunicorn thread that served) on at most {watch.servers} server sessions, the "
        f"primary's pg_stat_activity at most {watch.primary_sessions} sessions on the database "
        f"(straight to PostgreSQL: {single_watch.primary_sessions}); replica pool "
        f"{watch.replica_clients} clients on {watch.replica_servers} server sessions",
        f"  {options.connections} clients at once, each running 10 transactions: PgBouncer held "
        f"{crowd.clients} clients (the service's included) on at most {crowd.servers} server "
        f"sessions (default_pool_size {options.pool_size}); pg_stat_activity at most "
        f"{crowd.primary_sessions}",
        f"  replica lag (until the replica replayed what the primary had written), {len(lag)} "
        f"samples under load: p50 {percentile(lag, 50):.1f} ms, p99 {percentile(lag, 99):.1f} ms",
        f"  reads served by the replica (pg_stat_statements): {served['balance']} balance and "
        f"{served['history']} history queries ({before_stop['balance']} and "
        f"{before_stop['history']} in the fault phase before it stopped)",
        f"  faults: replica stopped at {faults.replica_stopped_at:.0f}s; primary stopped at "
        f"{faults.primary_stopped_at:.0f}s, started at {faults.primary_back_at:.0f}s; "
        f"{options.faults}s, {options.clients} clients",
        f"  answers: {codes}; no answer {tally.unanswered}; 503 without Retry-After "
        f"{tally.without_retry_after}; 409 request_in_progress retried {tally.in_progress}; "
        f"other errors {len(tally.other_errors)}",
        f"  reads of other members: {tally.reads}, {tally.reads_after_replica_stop} after the "
        f"replica stopped; errors {tally.read_errors}",
        f"  idempotency: {len(tally.earned)} earns, {len(tally.retried_keys)} retried under "
        f"their key after a 503 or no answer; with exactly one ledger entry, the transaction "
        f"answered: {once}; entries no client was answered {len(stray)}",
        f"  read-your-writes: {tally.ryw_checked} balances read right after their member's "
        f"earn, mismatches {len(tally.ryw_mismatches)}",
        f"  verify_ledger: {ledger['wallets_checked']} wallets, "
        f"{len(ledger['mismatches'])} mismatches",
    ]
    print("\n".join(lines))
    for item in tally.other_errors[:5] + tally.ryw_mismatches[:5]:
        print(f"    {item}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())

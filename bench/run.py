"""The benchmark: the service against an honest ceiling, on PostgreSQL, under gunicorn, with wrk.

    make bench            # or: .venv/bin/python bench/run.py [--duration 10] [--connections 8]

It recreates a `cashback_bench` database (BENCH_DATABASE_URL to choose another), loads members
with an email, a phone, a wallet with history and a member token (and a base of members with a
wallet and no entry, the rest of a merchant's customers), and serves two applications with the
same gunicorn settings: the service (config.wsgi: authentication, throttling in Redis,
validation, idempotency, JSON access logs) and the reference (bench/reference: a bare Django +
DRF view per path running the service's own statements, imported from where the service keeps
them, in the same round trips, on the same connection engine and settings, its cards cached as
the service caches them, its answers rendered by the service's renderer, and nothing else). Both
run at once and wrk drives them in turns (--rounds of --duration seconds each, each round
starting with the other server) over loopback on what merchants call: earn by member_id, by
email and by phone, earn creating a member, earn with an Idempotency-Key (every till sends one),
earn with a 5-line basket, redeem with a member token, balance and history. Every answer is
checked (status 200, `"success":true`); any other counts as an error, on either side.

For each path it prints requests per second, p50, p99, errors, the CPU each request cost the
driven server's workers, PostgreSQL and Redis (from /proc, `wrk_cpu`), and the service's ratio
to the reference (the median of the rounds' ratios, each round's in brackets). On bench_seed's
programme card (20 earning rules) it measures an earn and a quote of a 5-line basket, which
have no reference: the earn is compared with the plain earn by member_id, the quote with that
earn, all three served by the service in the same rounds. Then it states the targets it checked
and those missed, and exits non-zero when one is; then where an earn by email spends its time,
layer by layer (bench/layers.py), a service worker's resident memory after 1,000 and after
100,000 requests (--memory-requests), and checks the ledger. The results go to --json
(docs/benchmarks/latest.json by default), which the documentation's figures come from.
"""

import argparse
import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    PYTHON,
    ROOT,
    cpu_seconds,
    deploy,
    gunicorn,
    manage,
    postgres_pids,
    production_env,
    recreate_database,
    redis_pid,
    rss_kib,
    setup_django,
    worker_pids,
)

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/cashback_bench"
API = "/api/v1/cashback/cashback"


@dataclass
class Result:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU per request, in µs: the driven server's workers', PostgreSQL's (its processes that
    # work for the benchmark's database) and Redis's (only one server is driven at a time).
    cpu_us: float = 0.0
    pg_us: float = 0.0
    redis_us: float = 0.0


def prepare(members: int, entries_each: int, *, base: int = 0) -> dict:
    """An app, a card, and members each with an email, a phone, a wallet with some history
    (through the services) and a member token for redeem; before them, `base` members with a
    wallet and no entry yet, the rest of a merchant's customers (bulk-inserted). Beside the
    card, bench_seed's programme card (20 active rules), on which the members have a wallet
    with a fifth as many earns, each of a basket as the benchmark sends (`basket`).

    The base keeps the member and wallet tables the size of a live merchant's: PostgreSQL plans
    a prepared statement once, and on tables of a few hundred rows it plans sequential scans,
    which it then keeps while an earn creating members grows the tables within a round."""
    from decimal import Decimal

    from apps_auth.services import app_create
    from cards.services import card_create
    from cashback.management.commands.bench_seed import members_with_wallets, programme_card
    from cashback.services import cashback_earn
    from members.models import Member
    from members.services import MemberRef
    from members.tokens import member_token_issue

    app, issued = app_create(
        name="Benchmark",
        scopes=["cashback_read", "cashback_write", "card_read"],
        rate_limit_per_minute=2_000_000_000,
    )
    card = card_create(app=app, name="Bench card", cashback_percentage=Decimal(5))
    programme = programme_card(app=app)
    members_with_wallets(app=app, card=card, count=base)
    rng = random.Random(0)
    ids, tokens = [], []
    for i in range(members):
        member = Member.objects.create(app=app, email=f"bench{i}@example.com", phone=phone(i))
        ids.append(member.pk)
        tokens.append(member_token_issue(app=app, member_id=member.pk, ttl_seconds=86_400).token)
        for _ in range(entries_each):
            cashback_earn(
                app=app,
                card=card,
                member_ref=MemberRef(member_id=member.pk),
                purchase_amount=Decimal("20"),
            )
        # Some history on the programme card too: uses counted, the welcome bonus had.
        for _ in range(max(entries_each // 5, 1)):
            lines = basket(rng)
            cashback_earn(
                app=app,
                card=programme,
                member_ref=MemberRef(member_id=member.pk),
                purchase_amount=sum((line.amount for line in lines), Decimal(0)),
                lines=lines,
            )
    return {
        "app_id": app.app_id,
        "app_pk": app.pk,
        "api_key": issued.raw_key,
        "card_id": card.pk,
        "programme_card_id": programme.pk,
        "first_member": ids[0],
        "members": len(ids),
        "tokens": tokens,
    }


BASKET_LINES = 5


def basket(rng: random.Random) -> list:
    """A basket as the benchmark's programme paths send: `BASKET_LINES` lines of the
    catalogue bench_seed's rules name, each of 2 to 40 (whole units)."""
    from decimal import Decimal

    from cashback.management.commands.bench_seed import CATALOGUE
    from programme.engine import Line

    return [
        Line(sku=sku, category=category, amount=Decimal(rng.randint(2, 40)))
        for sku, category in (rng.choice(CATALOGUE) for _ in range(BASKET_LINES))
    ]


def phone(i: int) -> str:
    """The i-th benchmark member's phone, in E.164 (a Tunisian mobile number)."""
    return f"+2162{i:07d}"


def analyze(url: str) -> None:
    """Fresh statistics, as autovacuum would have gathered on a live database."""
    subprocess.run(["psql", url, "-q", "-c", "VACUUM ANALYZE"], check=True)


# The tables autovacuum would analyze now: more rows changed since their last analysis than
# autovacuum_analyze_threshold plus autovacuum_analyze_scale_factor of their rows.
_DUE_FOR_ANALYZE = """
SELECT format('%I.%I', s.schemaname, s.relname) FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
WHERE s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float
    + current_setting('autovacuum_analyze_scale_factor')::float * greatest(c.reltuples, 0)
"""


def autoanalyze(url: str) -> list[str]:
    """ANALYZE what autovacuum would, between rounds: this machine's server may run with
    autovacuum off (CI's does), and a live database's statistics follow its tables' growth.
    Without them the servers' prepared statements keep plans made for the tables as they were
    (an earn creating members multiplies the member and wallet tables within a round)."""
    with psycopg.connect(url, autocommit=True) as connection:
        due = [row[0] for row in connection.execute(_DUE_FOR_ANALYZE)]
        for table in due:
            connection.execute(f"ANALYZE {table}")  # names from the catalog, quoted by format()
    return due


# What each measured request does, as merchants call it. `m` is a random benchmark member's
# index (0-based) in the Lua script; redeem takes 0.01 from wallets that hold about 25.
KINDS = {
    "earn_id": "earn by member_id",
    "earn_email": "earn by email",
    "earn_phone": "earn by phone",
    "earn_new": "earn, new member",
    "earn_key": "earn, Idempotency-Key",
    "earn_lines": "earn, 5-line basket",
    "redeem": "redeem, member token",
    "balance": "balance",
    "history": "history",
}
# The programme card's paths (bench_seed's 20 rules), by member_id with a basket of
# BASKET_LINES lines, the members spread as the plain earn's are. They have no reference: one
# would need the rules' arithmetic (`programme.engine`), which is the service's, not the
# framework's. Each is compared instead with the path it must keep up with, measured by the
# same service in the same rounds, in turns: the programme earn with the plain earn by
# member_id, the quote with the programme earn.
PROGRAMME_KINDS = {
    "earn_rules": "earn, 20 rules, 5 lines",
    "quote": "quote, 20 rules, 5 lines",
}
PLAIN = "earn_plain"  # the plain earn by member_id, measured in the programme paths' rounds
AGAINST = {"earn_rules": PLAIN, "quote": "earn_rules"}
LABELS = {**KINDS, **PROGRAMME_KINDS, PLAIN: KINDS["earn_id"]}


def lua_script(kind: str, shop: dict, headers: dict, paths: dict) -> str:
    """A wrk script: each request names a random member of the benchmark's (earn_new: a new
    email each time, unique per run, thread and request; `__RUN__` is replaced per run; so is
    earn_key's Idempotency-Key). Redeem names the member by its token. Every answer is checked:
    status 200 and the envelope's `"success":true`; the script's `done` prints how many were
    not (`bad answers: N`), which count as errors."""
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    first, count, card = shop["first_member"], shop["members"], shop["card_id"]
    prelude = ""
    if kind in PROGRAMME_KINDS or kind == "earn_lines":
        from cashback.management.commands.bench_seed import CATALOGUE

        catalogue = ", ".join(f'{{"{sku}", "{category}"}}' for sku, category in CATALOGUE)
        prelude = f"local catalogue = {{{catalogue}}}\n"
        path = paths["quote" if kind == "quote" else "earn"]
        on = card if kind == "earn_lines" else shop["programme_card_id"]
        # As `basket`: BASKET_LINES lines of the catalogue, each of 2 to 40.
        build = (
            "local lines, total = {}, 0\n"
            f"  for i = 1, {BASKET_LINES} do\n"
            "    local item = catalogue[math.random(1, #catalogue)]\n"
            "    local amount = math.random(2, 40)\n"
            "    total = total + amount\n"
            '    lines[i] = string.format(\'{"sku": "%s", "category": "%s", "amount": %d, '
            '"quantity": 1}\', item[1], item[2], amount)\n'
            "  end\n"
            f'  local body = string.format(\'{{"card_id": {on}, '
            '"member_id": %d, "purchase_amount": %d, "lines": [%s]}\', first + m, total, '
            'table.concat(lines, ", "))\n'
            f'  return wrk.format("POST", "{path}", nil, body)'
        )
    elif kind in ("earn_id", "earn_email", "earn_phone", "earn_new", "earn_key"):
        who = {
            "earn_id": ('"member_id": %d', "first + m"),
            "earn_key": ('"member_id": %d', "first + m"),
            "earn_email": ('"email": "bench%d@example.com"', "m"),
            "earn_phone": ('"phone": "+2162%07d"', "m"),
            "earn_new": ('"email": "new-__RUN__-%d-%d@example.com"', "tid, counter"),
        }[kind]
        # A request's own headers replace wrk's: the key's come with a copy of them.
        keyed = (
            "local keyed = {}\n"
            "  for name, value in pairs(wrk.headers) do keyed[name] = value end\n"
            '  keyed["Idempotency-Key"] = string.format("k-__RUN__-%d-%d", tid, counter)\n  '
            if kind == "earn_key"
            else "local keyed = nil\n  "
        )
        build = (
            f'{keyed}local body = string.format(\'{{"card_id": {card}, {who[0]}, '
            f'"purchase_amount": 50}}\', {who[1]})\n'
            f'  return wrk.format("POST", "{paths["earn"]}", keyed, body)'
        )
    elif kind == "redeem":
        tokens = ", ".join(f'"{t}"' for t in shop["tokens"])
        prelude = f"local tokens = {{{tokens}}}\n"
        build = (
            'wrk.headers["X-Member-Token"] = tokens[m + 1]\n'
            f'  local body = \'{{"card_id": {card}, "amount": 0.01}}\'\n'
            f'  return wrk.format("POST", "{paths["redeem"]}", nil, body)'
        )
    elif kind == "mixed":
        build = (
            "local pick = math.random(1, 3)\n"
            "  if pick == 1 then\n"
            f'    local body = string.format(\'{{"card_id": {card}, "member_id": %d, '
            f'"purchase_amount": 50}}\', first + m)\n'
            f'    return wrk.format("POST", "{paths["earn"]}", nil, body)\n'
            "  elseif pick == 2 then\n"
            f'    return wrk.format("GET", string.format("{paths["balance"]}'
            f'?card_id={card}&member_id=%d", first + m))\n'
            "  end\n"
            f'  return wrk.format("GET", string.format("{paths["history"]}'
            f'?card_id={card}&member_id=%d&limit=20", first + m))'
        )
    else:
        query = f"?card_id={card}&member_id=%d" + ("&limit=20" if kind == "history" else "")
        build = f'return wrk.format("GET", string.format("{paths[kind]}{query}", first + m))'
    return (
        f'{header_lines}\nwrk.headers["Content-Type"] = "application/json"\n{prelude}'
        f"local first = {first}\nlocal counter = 0\nbad = 0\nlocal threads = {{}}\n"
        'function setup(thread)\n  thread:set("tid", #threads)\n'
        "  table.insert(threads, thread)\nend\n"
        "math.randomseed(os.time())\n"
        f"request = function()\n  counter = counter + 1\n  local m = math.random(0, {count - 1})\n"
        f"  {build}\nend\n"
        "response = function(status, headers, body)\n"
        "  if status ~= 200 or not string.find(body, '\"success\":true', 1, true) then\n"
        "    bad = bad + 1\n  end\nend\n"
        "done = function(summary, latency, requests)\n  local total = 0\n"
        '  for _, thread in ipairs(threads) do total = total + thread:get("bad") end\n'
        '  io.write(string.format("bad answers: %d\\n", total))\nend\n'
    )


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"unreadable latency {text!r}")
    number, unit = match.groups()
    return float(number) * _UNITS[unit]


def wrk(base: str, script: str, *, duration: float, connections: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script.replace("__RUN__", str(time.time_ns())))
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{int(duration)}s",
            "--latency",
            "--timeout=5s",
            "-s",
            file.name,
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(file.name)
    errors = 0
    # A non-2xx answer is also a bad one (counted once); a script that checks no answer leaves
    # wrk's count of them.
    found = re.search(r"bad answers: (\d+)", out) or re.search(
        r"Non-2xx or 3xx responses: (\d+)", out
    )
    if found:
        errors += int(found.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(n) for n in match.groups())

    def find(pattern: str) -> str:
        match = re.search(pattern, out, re.M)
        if match is None:
            raise RuntimeError(f"wrk printed no {pattern!r}:\n{out}")
        return match.group(1)

    return Result(
        requests=int(find(r"(\d+) requests in")),
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)\s*$")),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)\s*$")),
        errors=errors,
    )


def wrk_cpu(
    base: str,
    script: str,
    *,
    master: int,
    stores: tuple[str, str],
    duration: float,
    connections: int,
) -> Result:
    """`wrk`, with the CPU each request cost the server's workers, PostgreSQL and Redis
    (`stores`: their URLs) beside its throughput: on a machine whose cores they share, and that
    neighbours may slow, the time each side spends is what tells where a request's cost lies,
    and it varies less than the throughput from one run to the next. A process that exits
    during the run is left out (a worker gunicorn replaces, a backend closing its connection);
    one that starts during it counts from nothing."""
    database_url, redis_url = stores
    redis = redis_pid(redis_url)
    sides = {
        "workers": lambda: worker_pids(master),
        "postgres": lambda: postgres_pids(database_url),
        "redis": lambda: [] if redis is None else [redis],
    }
    before = {side: cpu_seconds(pids()) for side, pids in sides.items()}
    result = wrk(base, script, duration=duration, connections=connections)
    per_request = 1e6 / max(result.requests, 1)
    spent = {}
    for side, pids in sides.items():
        after = cpu_seconds(pids())
        spent[side] = sum(now - before[side].get(pid, 0.0) for pid, now in after.items())
    result.cpu_us = spent["workers"] * per_request
    result.pg_us = spent["postgres"] * per_request
    result.redis_us = spent["redis"] * per_request
    return result


def cpu_total(result: Result) -> float:
    return result.cpu_us + result.pg_us + result.redis_us


def combined(rounds: list[Result]) -> Result:
    """Several runs as one: requests and errors added up, the rate over the whole time, the
    median of the runs' latency percentiles, the CPU per request over all their requests."""
    requests = sum(r.requests for r in rounds)
    return Result(
        requests=requests,
        rps=sum(r.rps for r in rounds) / len(rounds),
        p50_ms=median(r.p50_ms for r in rounds),
        p99_ms=median(r.p99_ms for r in rounds),
        errors=sum(r.errors for r in rounds),
        cpu_us=sum(r.cpu_us * r.requests for r in rounds) / max(requests, 1),
        pg_us=sum(r.pg_us * r.requests for r in rounds) / max(requests, 1),
        redis_us=sum(r.redis_us * r.requests for r in rounds) / max(requests, 1),
    )


class Tee:
    """What the benchmark prints, also kept: written beside its JSON, as the run's report."""

    def __init__(self, stream) -> None:
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def main() -> int:
    options = parse_options()
    report = Tee(sys.stdout)
    with contextlib.redirect_stdout(report):
        code = run(options)
    Path(options.json).with_suffix(".txt").write_text(report.kept.getvalue())
    return code


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument(
        "--rounds", type=int, default=3, help="turns each server takes per endpoint"
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--members", type=int, default=200, help="members the load names")
    parser.add_argument(
        "--base", type=int, default=20_000, help="further members, with a wallet and no entries"
    )
    parser.add_argument("--memory-requests", type=int, default=100_000, help="0: skip")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument(
        "--json",
        help="write the results, with the run's settings, to this file, and what the run "
        "printed beside it (.txt); default: docs/benchmarks/latest.json for a run of every path "
        "with the default settings (the figures the documentation shows), else "
        f"{PARTIAL_RUN} in the temporary folder",
    )
    parser.add_argument(
        "--paths",
        default=",".join([*KINDS, *PROGRAMME_KINDS]),
        help="which paths to measure, comma-separated (default: all of "
        f"{', '.join([*KINDS, *PROGRAMME_KINDS])}; either of {', '.join(PROGRAMME_KINDS)} "
        "measures both, with the plain earn by member_id in their rounds)",
    )
    parser.add_argument(
        "--profile-requests",
        type=int,
        default=2000,
        help="earns by email timed layer by layer in this process (0: skip)",
    )
    parser.add_argument(
        "--scale",
        nargs=2,
        type=int,
        metavar=("HOT", "TOTAL"),
        help="then load HOT entries on one wallet and TOTAL in all (bench_seed) and measure "
        "history pages up to offset 10,000 there and earn against the empty-database figure",
    )
    options = parser.parse_args()
    if unknown := set(options.paths.split(",")) - set(KINDS) - set(PROGRAMME_KINDS):
        parser.error(f"unknown paths: {', '.join(sorted(unknown))}")
    if options.json is None:
        # Only a whole run, as documented, replaces the figures the documentation shows.
        whole = all(
            getattr(options, name) == parser.get_default(name)
            for name in ("paths", "duration", "rounds", "connections", "members", "base")
        )
        published = ROOT / "docs" / "benchmarks" / "latest.json"
        options.json = str(published if whole else Path(tempfile.gettempdir()) / PARTIAL_RUN)
    return options


PARTIAL_RUN = "cashback-bench.json"


def run(options: argparse.Namespace) -> int:
    chosen = options.paths.split(",")
    kinds = {kind: KINDS[kind] for kind in chosen if kind in KINDS}
    programme = any(kind in PROGRAMME_KINDS for kind in chosen)

    env = production_env(
        options.database_url,
        "benchmark",
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        CONN_MAX_AGE="600",
        LOG_LEVEL="INFO",
    )
    recreate_database(options.database_url)
    deploy(env)
    setup_django(env)
    shop = prepare(options.members, entries_each=25, base=options.base)
    analyze(options.database_url)
    log = Path(tempfile.gettempdir()) / "cashback-bench.log"
    print(f"machine: {os.cpu_count()} cores; gunicorn {options.workers} sync workers each; "
          f"wrk 2 threads, {options.connections} connections, {options.rounds} rounds of "
          f"{options.duration:g}s per server and endpoint, taking turns; "
          f"server logs in {log}")  # fmt: skip

    service_headers = {
        "X-App-Id": shop["app_id"],
        "X-Api-Key": shop["api_key"],
        "X-Forwarded-Proto": "https",  # as the TLS-terminating proxy would say
    }
    paths = {kind: f"{API}/{kind}" for kind in ("earn", "redeem", "balance", "history", "quote")}
    reference_headers = {"X-App-Id": shop["app_id"], "X-Bench-App": str(shop["app_pk"])}
    targets = {
        "service": ("config.wsgi", env, "/healthz", service_headers, paths),
        "reference": (
            "bench.reference.wsgi:application",
            {**env, "DJANGO_SETTINGS_MODULE": "bench.reference.settings"},
            "/healthz",
            reference_headers,
            {kind: f"/{kind}" for kind in paths},
        ),
    }
    # Both servers run at once and take turns, round after round, each round starting with the
    # other one, so that whatever else the machine does at a given moment weighs on both alike;
    # the ratio is the median of the rounds' ratios.
    results: dict[str, dict[str, Result]] = {name: {} for name in targets}
    ratios: dict[str, list[float]] = {}
    p99_ratios: dict[str, list[float]] = {}
    with ExitStack() as servers:
        started = {
            name: servers.enter_context(
                gunicorn(wsgi, target_env, workers=options.workers, health=health, log=log)
            )
            for name, (wsgi, target_env, health, _, _) in targets.items()
        }
        bases = {name: base for name, (base, _) in started.items()}
        stores = (options.database_url, env["REDIS_URL"])
        masters = {name: server.pid for name, (_, server) in started.items()}
        for kind in kinds:
            scripts = {
                name: lua_script(kind, shop, headers, target_paths)
                for name, (_, _, _, headers, target_paths) in targets.items()
            }
            for name in targets:  # warm up
                wrk(bases[name], scripts[name], duration=2, connections=options.connections)
            rounds: dict[str, list[Result]] = {name: [] for name in targets}
            for turn in range(options.rounds):
                autoanalyze(options.database_url)
                names = list(targets)
                for name in names[turn % 2 :] + names[: turn % 2]:
                    rounds[name].append(
                        wrk_cpu(
                            bases[name],
                            scripts[name],
                            master=masters[name],
                            stores=stores,
                            duration=options.duration,
                            connections=options.connections,
                        )
                    )
            for name in targets:
                results[name][kind] = combined(rounds[name])
            pairs = list(zip(rounds["service"], rounds["reference"], strict=True))
            ratios[kind] = [s.rps / r.rps for s, r in pairs]
            p99_ratios[kind] = [s.p99_ms / max(r.p99_ms, 1e-9) for s, r in pairs]
        compared: dict[str, list[float]] = {}
        if programme:
            measured, compared = measure_programme(
                shop, bases["service"], masters["service"], service_headers, paths, options, env
            )
            results["service"].update(measured)

    print()
    if kinds:
        print(
            f"{'path':<21} {'service rps':>11} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
            f"{'cpu µs':>6} {'pg µs':>6} {'rd µs':>5}   {'bare rps':>8} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'errors':>6} {'cpu µs':>6} {'pg µs':>6} {'rd µs':>5}   {'ratio':>5}"
        )
    for kind, label in kinds.items():
        s, r = results["service"][kind], results["reference"][kind]
        print(
            f"{label:<21} {s.rps:>11.0f} {s.p50_ms:>7.2f} {s.p99_ms:>7.2f} {s.errors:>6} "
            f"{s.cpu_us:>6.0f} {s.pg_us:>6.0f} {s.redis_us:>5.0f}   {r.rps:>8.0f} "
            f"{r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.errors:>6} {r.cpu_us:>6.0f} {r.pg_us:>6.0f} "
            f"{r.redis_us:>5.0f}   "
            f"{median(ratios[kind]):>5.2f}  ({', '.join(f'{x:.2f}' for x in ratios[kind])})"
        )
    if kinds:
        print("cpu µs, pg µs, rd µs: CPU per request of the server's workers, PostgreSQL, Redis")
    if programme:
        print(
            "\nthe programme card's paths (no reference: each compared with the path it must keep "
            "up with, served by the service in the same rounds, in turns):"
        )
        print(
            f"{'path':<25} {'service rps':>11} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
            f"{'cpu µs':>6} {'pg µs':>6} {'rd µs':>5}   {'against':<25} {'ratio':>5} "
            f"{'cpu ratio':>9}"
        )
        for kind in (PLAIN, *PROGRAMME_KINDS):
            s = results["service"][kind]
            line = (
                f"{LABELS[kind]:<25} {s.rps:>11.0f} {s.p50_ms:>7.2f} {s.p99_ms:>7.2f} {s.errors:>6}"
                f" {s.cpu_us:>6.0f} {s.pg_us:>6.0f} {s.redis_us:>5.0f}"
            )
            if kind in compared:
                rounds_text = ", ".join(f"{x:.2f}" for x in compared[kind])
                against = results["service"][AGAINST[kind]]
                cpu_ratio = cpu_total(against) / max(cpu_total(s), 1e-9)
                line += (
                    f"   {LABELS[AGAINST[kind]]:<25} {median(compared[kind]):>5.2f} "
                    f"{cpu_ratio:>9.2f}  ({rounds_text})"
                )
            print(line)
        print(
            "cpu ratio: the CPU per request (workers, PostgreSQL and Redis) of the path "
            "compared with, over the path's"
        )
    report_text, met = targets_report(results, ratios, p99_ratios, compared)
    print(report_text)

    if options.profile_requests > 0:
        from bench.layers import earn_layers

        print(earn_layers(shop, requests=options.profile_requests))

    memory = None
    if options.memory_requests > 0:
        memory = measure_memory(shop, env, log, options, service_headers, paths)
    scale = None
    if options.scale:
        earn = results["service"]["earn_id"]
        scale = measure_scale(shop, env, log, options, service_headers, earn)
    ledger = manage(env, "verify_ledger", "--json", capture=True)
    report = json.loads(ledger.stdout)
    print(
        f"\nverify_ledger: {report['wallets_checked']} wallets, "
        f"{len(report['mismatches'])} mismatches"
    )
    if options.json:
        Path(options.json).parent.mkdir(parents=True, exist_ok=True)
        Path(options.json).write_text(
            json.dumps(
                {
                    "run": {
                        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "cores": os.cpu_count(),
                        "commit": subprocess.run(
                            ["git", "rev-parse", "--short", "HEAD"],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                        ).stdout.strip(),
                        "options": vars(options),
                        "targets": report_text,
                    },
                    "results": {
                        n: {k: vars(v) for k, v in kinds.items()} for n, kinds in results.items()
                    },
                    "ratios": ratios,
                    "p99_ratios": p99_ratios,
                    "programme_ratios": compared,
                    "targets_met": met,
                    "memory": memory,
                    "scale": scale,
                    "ledger": report,
                },
                indent=2,
                default=str,
            )
        )
    print(f"results: {options.json} and its .txt")
    return 0 if met and not report["mismatches"] else 1


# The targets, each checked in the same run: every path at least TARGET_RATIO of the
# reference's throughput (the median of the rounds' ratios), the service's p99 at most
# TARGET_P99_RATIO times the reference's in every round, no error on either side. The programme
# card's paths, which have no reference: an earn with 20 rules and a 5-line basket within 15 %
# of the plain earn's throughput, a quote at least as fast as that earn.
TARGET_RATIO = 0.80
TARGET_P99_RATIO = 1.3
TARGET_PROGRAMME = {"earn_rules": 0.85, "quote": 1.0}


def targets_report(
    results: dict, ratios: dict, p99_ratios: dict, compared: dict
) -> tuple[str, bool]:
    """What was checked, and each target missed; and whether all were met."""
    missed = []
    for kind, ratio_rounds in ratios.items():
        label = LABELS[kind]
        service, bare = results["service"][kind], results["reference"][kind]
        if (ratio := median(ratio_rounds)) < TARGET_RATIO:
            missed.append(f"{label}: ratio {ratio:.2f} < {TARGET_RATIO:.2f}")
        if (worst := max(p99_ratios[kind])) > TARGET_P99_RATIO:
            missed.append(
                f"{label}: p99 {worst:.2f} x the reference's in a round > {TARGET_P99_RATIO:g} "
                f"(p99 of the rounds: {service.p99_ms:.2f} ms against {bare.p99_ms:.2f} ms)"
            )
        for side, result in (("service", service), ("reference", bare)):
            if result.errors:
                missed.append(f"{label}: {result.errors} errors on the {side}")
    for kind, wanted in TARGET_PROGRAMME.items():
        if kind not in compared:
            continue
        if (ratio := median(compared[kind])) < wanted:
            missed.append(
                f"{LABELS[kind]}: {ratio:.2f} of {LABELS[AGAINST[kind]]}'s throughput "
                f"< {wanted:.2f}"
            )
        for path in (kind, AGAINST[kind]):
            errors = results["service"][path].errors
            if errors and f"{LABELS[path]}: {errors} errors" not in missed:
                missed.append(f"{LABELS[path]}: {errors} errors")
    checked = []
    if ratios:
        checked.append(
            f"{', '.join(LABELS[k] for k in ratios)}: each >= {TARGET_RATIO:g} of the "
            f"reference's throughput, p99 <= {TARGET_P99_RATIO:g} x the reference's in every "
            "round, no errors on either side"
        )
    if compared:
        checked.append(
            f"earn with 20 rules >= {TARGET_PROGRAMME['earn_rules']:g} of the plain earn, "
            f"quote >= {TARGET_PROGRAMME['quote']:g} of that earn, no errors"
        )
    scope = "; ".join(checked) or "nothing"
    if not missed:
        return f"targets checked ({scope}): all met", True
    return f"targets checked ({scope}): missed\n  " + "\n  ".join(missed), False


def measure_programme(
    shop: dict, base: str, master: int, headers: dict, paths: dict, options, env: dict
) -> tuple[dict[str, Result], dict[str, list[float]]]:
    """The plain earn by member_id, the programme earn and the quote, on the service, in turns
    round after round (each round starting one further along, so that none always follows the
    same one); each programme path's ratio to the path it is compared with is the median of
    the rounds' ratios."""
    scripts = {
        PLAIN: lua_script("earn_id", shop, headers, paths),
        **{kind: lua_script(kind, shop, headers, paths) for kind in PROGRAMME_KINDS},
    }
    order = list(scripts)
    for kind in order:  # warm up
        wrk(base, scripts[kind], duration=2, connections=options.connections)
    rounds: dict[str, list[Result]] = {kind: [] for kind in order}
    for turn in range(options.rounds):
        autoanalyze(options.database_url)
        for kind in order[turn % len(order) :] + order[: turn % len(order)]:
            rounds[kind].append(
                wrk_cpu(
                    base,
                    scripts[kind],
                    master=master,
                    stores=(options.database_url, env["REDIS_URL"]),
                    duration=options.duration,
                    connections=options.connections,
                )
            )
    compared = {
        kind: [a.rps / b.rps for a, b in zip(rounds[kind], rounds[AGAINST[kind]], strict=True)]
        for kind in PROGRAMME_KINDS
    }
    return {kind: combined(rounds[kind]) for kind in order}, compared


def measure_scale(shop, env, log, options, headers, empty_earn: Result) -> dict:
    """History on a wallet of HOT entries at offsets up to 10,000, and earn, after TOTAL."""
    hot, total = options.scale
    seeding = subprocess.run(
        [
            PYTHON,
            "manage.py",
            "bench_seed",
            "--json",
            f"--hot={hot}",
            f"--total={total}",
            f"--app={shop['app_id']}",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )  # fmt: skip  (the progress bar goes to stderr, on the terminal)
    seeded = json.loads(seeding.stdout.strip().splitlines()[-1])
    print(f"\nseeded {seeded['entries']:,} entries in {seeded['wallets']:,} wallets "
          f"({seeded['seconds']}s); hot wallet: member {seeded['hot_member_id']}")  # fmt: skip
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    history = (
        f"{header_lines}\nmath.randomseed(os.time())\n"
        "request = function()\n"
        f'  local path = string.format("{API}/history?card_id={seeded["card_id"]}'
        f'&member_id={seeded["hot_member_id"]}&limit=20&offset=%d", math.random(0, 10000))\n'
        '  return wrk.format("GET", path)\nend\n'
    )
    earn = lua_script("earn_id", shop, headers, {"earn": f"{API}/earn"})
    with gunicorn("config.wsgi", env, workers=options.workers, health="/healthz", log=log) as (
        base,
        _,
    ):
        wrk(base, history, duration=2, connections=options.connections)
        pages = wrk(base, history, duration=options.duration, connections=options.connections)
        wrk(base, earn, duration=2, connections=options.connections)
        earns = wrk(base, earn, duration=options.duration, connections=options.connections)
    change = earns.rps / empty_earn.rps - 1
    print(
        f"history, hot wallet of {hot:,}, offsets 0-10,000: {pages.rps:.0f} rps, "
        f"p50 {pages.p50_ms:.2f} ms, p99 {pages.p99_ms:.2f} ms, errors {pages.errors}"
    )
    print(f"earn with {seeded['entries']:,} entries: {earns.rps:.0f} rps "
          f"({change:+.1%} against the empty database), p99 {earns.p99_ms:.2f} ms, "
          f"errors {earns.errors}")  # fmt: skip
    return {"seeded": seeded, "history": vars(pages), "earn": vars(earns), "earn_change": change}


def measure_memory(shop, env, log, options, headers, paths) -> dict:
    """A fresh service's worker memory after 1,000 requests and after `--memory-requests`."""
    script = lua_script("mixed", shop, headers, paths)
    with gunicorn("config.wsgi", env, workers=options.workers, health="/healthz", log=log) as (
        base,
        server,
    ):
        served = 0
        while served < 1_000:
            served += wrk(base, script, duration=1, connections=options.connections).requests
        early = {pid: rss_kib(pid) for pid in worker_pids(server.pid)}
        early_served = served
        while served < options.memory_requests:
            served += wrk(base, script, duration=20, connections=options.connections).requests
            time.sleep(0)
        late = {pid: rss_kib(pid) for pid in worker_pids(server.pid)}
    print("\nworker memory (RSS), mixed earn/balance/history load:")
    growth = {}
    for pid in sorted(early):
        if pid in late:
            growth[pid] = late[pid] / early[pid] - 1
            print(
                f"  worker {pid}: {early[pid] / 1024:.1f} MiB after {early_served:,} requests, "
                f"{late[pid] / 1024:.1f} MiB after {served:,} ({growth[pid]:+.1%})"
            )
    return {"early_requests": early_served, "late_requests": served, "early": early,
            "late": late, "growth": growth}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

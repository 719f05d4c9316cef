"""What each private hook buys: the service's worker CPU per request with the hook and with the
public way instead, in this machine's processes, on PostgreSQL.

    .venv/bin/python bench/hooks.py [--requests 2000] [--repeats 5]

It recreates a `cashback_hooks` database (BENCH_DATABASE_URL's server), loads the benchmark's
members (`bench.run.prepare`) and, for each hook, serves the same requests through the service's
WSGI application in a process of its own (no network, no gunicorn: only the worker's own CPU
counts, `time.process_time`), with the hook and without it, in turns, `--repeats` times. A
process's CPU varies from one run to the next on a shared machine: the table gives the least and
the median of the runs, and the change of the median against the service as it is. What it
prints goes to docs/benchmarks/hooks.txt, which docs/architecture.md's table of private APIs
quotes.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import PYTHON, ROOT, deploy, production_env, recreate_database, setup_django
from bench.layers import wsgi_environ

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/cashback_hooks"
API = "/api/v1/cashback/cashback"
# Each hook, the path it is measured on, and what stands in for it without it.
HOOKS = {
    "as it is (earn)": ("earn", None),
    "DRF's deep copy of input fields": ("earn", "fields"),
    "statements not prepared": ("earn", "prepared"),
    "Django's server-side binding, prepared": ("earn", "server_side_binding"),
    "as it is (history)": ("history", None),
    "Model.from_db for core.rows.from_rows": ("history", "from_rows"),
    "Django's timestamptz loader": ("history", "c_loader"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # in a process of its own
    options = parser.parse_args()
    env = production_env(
        options.database_url,
        "hooks",
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        CONN_MAX_AGE="600",
        LOG_LEVEL="INFO",
    )
    if options.measure:
        return measure(json.loads(options.measure), env)
    recreate_database(options.database_url)
    deploy(env)
    setup_django(env)
    from apps_auth.services import api_key_create
    from bench.run import prepare

    shop = prepare(200, entries_each=25, base=2000)
    from apps_auth.models import App

    shop["api_key"] = api_key_create(app=App.objects.get(app_id=shop["app_id"])).raw_key
    runs: dict[str, list[float]] = {label: [] for label in HOOKS}
    for _ in range(options.repeats):
        for label, (kind, hook) in HOOKS.items():
            job = {"shop": shop, "kind": kind, "hook": hook, "requests": options.requests}
            out = subprocess.run(
                [PYTHON, __file__, "--measure", json.dumps(job)],
                cwd=ROOT,
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            runs[label].append(float(out.strip().splitlines()[-1]))
    lines = [
        f"worker CPU per request, µs: {options.requests:,} requests a run, {options.repeats} runs "
        f"each, in turns ({time.strftime('%Y-%m-%d', time.gmtime())})",
        f"{'variant':<40} {'path':<8} {'least':>6} {'median':>7} {'change':>7}",
    ]
    for label, (kind, hook) in HOOKS.items():
        base = median(runs[f"as it is ({kind})"])
        change = "" if hook is None else f"{median(runs[label]) / base - 1:+.1%}"
        lines.append(
            f"{label:<40} {kind:<8} {min(runs[label]):>6.0f} {median(runs[label]):>7.0f} "
            f"{change:>7}"
        )
    text = "\n".join(lines)
    print(text)
    (ROOT / "docs" / "benchmarks" / "hooks.txt").write_text(text + "\n")
    return 0


def measure(job: dict, env: dict) -> int:
    """Serves the job's requests with its hook replaced, after 300 to warm up; prints the CPU
    each took, in µs."""
    hook, shop = job["hook"], job["shop"]
    if hook in ("prepared", "server_side_binding"):
        env = {**env, "DATABASE_PREPARED_STATEMENTS": "false"}
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import logging

    from config.wsgi import application

    logging.disable(logging.INFO)
    _replace(hook)
    statuses: list[str] = []

    def serve(i: int) -> None:
        member = shop["first_member"] + i % shop["members"]
        if job["kind"] == "earn":
            body = json.dumps(
                {"card_id": shop["card_id"], "member_id": member, "purchase_amount": 50}
            ).encode()
            method, path, query = "POST", f"{API}/earn", ""
        else:
            body, method, path = b"", "GET", f"{API}/history"
            query = f"card_id={shop['card_id']}&member_id={member}&limit=20"
        environ = wsgi_environ(shop, body, method=method, path=path, query=query)
        result = application(environ, lambda status, _, exc_info=None: statuses.append(status))
        b"".join(result)
        result.close()

    for i in range(300):
        serve(i)
    started = time.process_time()
    for i in range(job["requests"]):
        serve(i)
    spent = time.process_time() - started
    if bad := [s for s in statuses if not s.startswith("200")]:
        raise RuntimeError(f"{len(bad)} requests failed: {bad[0]}")
    print(f"{spent / job['requests'] * 1e6:.1f}")
    return 0


def _replace(hook: str | None) -> None:
    """The public way in place of the hook, everywhere the service calls it."""
    if hook in (None, "prepared"):
        return
    if hook == "server_side_binding":
        # The public way to prepared statements: Django's server-side binding, psycopg
        # preparing each statement after its fifth run (`prepare_threshold`), and the session
        # keeping generic plans as the service's does.
        from django.db import connections
        from django.db.backends.signals import connection_created

        def keep_generic_plans(sender, connection, **kwargs):
            with connection.connection.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_generic_plan")

        options = connections["default"].settings_dict["OPTIONS"]
        options["server_side_binding"], options["prepare_threshold"] = True, 5
        connection_created.connect(keep_generic_plans, weak=False)
        return
    if hook == "fields":
        from rest_framework import serializers

        from core.api import serializers as ours

        for value in vars(ours).values():
            if isinstance(value, type) and "get_fields" in value.__dict__:
                setattr(value, "get_fields", serializers.Serializer.get_fields)  # noqa: B010
    elif hook == "from_rows":
        from django.db import connections

        from core import rows

        def made_from_db(model, found, using):
            connection = connections[using]
            names, readers = rows._readers(model, using)
            made = []
            for row in found:
                values = list(row)
                for position, col, converters in readers:
                    for converter in converters:
                        values[position] = converter(values[position], col, connection)
                made.append(model.from_db(using, names, values))
            return made

        _rebind(rows.from_rows, made_from_db)
        _rebind(rows.from_row, lambda model, row, using: made_from_db(model, [row], using)[0])
    elif hook == "c_loader":
        from django.db.backends.signals import connection_created

        from core.connections import timestamptz_loader_install

        connection_created.disconnect(timestamptz_loader_install, dispatch_uid="core.timestamptz")


def _rebind(function, replacement) -> None:
    for module in list(sys.modules.values()):
        for name, value in list(vars(module).items()) if module is not None else ():
            if value is function:
                setattr(module, name, replacement)


if __name__ == "__main__":
    sys.exit(main())

import asyncio
import contextlib
import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from procrastinate.connector import BaseAsyncConnector
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.contrib.django.utils import connector_params
from procrastinate.psycopg_connector import PsycopgConnector

from webhooks.dispatch import Deliveries

logger = logging.getLogger("webhooks.worker")

# The `worker` alias exists when WORKER_DATABASE_URL is set (config/settings.py).
WORKER_ALIAS = "worker"
# How long the job queue's worker waits before it starts again after it stopped on its own (its
# database went away): doubling from the first to the last.
RESTART_FIRST_SECONDS, RESTART_MAX_SECONDS = 1.0, 15.0


class Command(BaseCommand):
    help = (
        "The background worker: webhook deliveries, shared fairly between apps, and the "
        "periodic jobs (releases and expiries of cashback; procrastinate, every app's "
        "tasks.py) beside them, each on its own threads. Runs until stopped, and through its "
        "database restarting; SIGTERM or SIGINT lets the work in flight finish first."
    )

    def handle(self, *args, **options):
        connector = app.connector
        if not isinstance(connector, DjangoConnector):
            raise CommandError("The procrastinate app is expected on Django's connector.")
        listen_alias = WORKER_ALIAS if WORKER_ALIAS in settings.DATABASES else "default"
        stop = threading.Event()
        deliveries = Deliveries(
            slots=settings.WORKER_CONCURRENCY,
            per_app=settings.WEBHOOK_APP_CONCURRENCY,
            poll_seconds=settings.WORKER_POLL_SECONDS,
            listen_alias=listen_alias,
        )
        thread = threading.Thread(target=deliveries.run, args=(stop,), name="deliveries")
        thread.start()
        try:
            asyncio.run(_jobs(connector, stop))
        finally:
            stop.set()
            thread.join()


async def _jobs(connector: DjangoConnector, stop: threading.Event) -> None:
    """Runs procrastinate's worker until SIGTERM or SIGINT (which also set `stop`), and starts
    it again whenever it stops on its own: procrastinate stops its worker when the database
    connection it listens on is lost (a restart, a failover), and a worker must outlive that.

    The web side queues jobs on Django's connection; the worker listens and polls on a pool of
    its own, on the same database: straight to PostgreSQL when WORKER_DATABASE_URL is set
    (LISTEN needs a session a transaction pooler cannot give)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop.set()
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    worker_connector: BaseAsyncConnector
    if WORKER_ALIAS in settings.DATABASES:
        worker_connector = PsycopgConnector(kwargs=connector_params(WORKER_ALIAS))
    else:
        worker_connector = connector.get_worker_connector()
    pause = RESTART_FIRST_SECONDS
    with app.replace_connector(worker_connector):
        while not stopping.is_set():
            started = time.monotonic()
            run = asyncio.create_task(_run_worker())
            stopped = asyncio.create_task(stopping.wait())
            await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.is_set():
                # Cancelling procrastinate's worker stops it gracefully: the jobs in flight
                # finish (within its shutdown_graceful_timeout).
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run
                return
            stopped.cancel()
            reason = "it stopped" if run.exception() is None else str(run.exception()).strip()
            if time.monotonic() - started > 60:
                pause = RESTART_FIRST_SECONDS
            logger.warning(
                "the job queue's worker stopped (%s); starting it again in %.0f s", reason, pause
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=pause)
            pause = min(pause * 2, RESTART_MAX_SECONDS)


async def _run_worker() -> None:
    async with app.open_async():
        await app.run_worker_async(install_signal_handlers=False)

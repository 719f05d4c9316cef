from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from procrastinate.connector import BaseAsyncConnector
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.contrib.django.utils import connector_params
from procrastinate.psycopg_connector import PsycopgConnector

# The `worker` alias exists when WORKER_DATABASE_URL is set (config/settings.py).
WORKER_ALIAS = "worker"


class Command(BaseCommand):
    help = (
        "The background worker: webhook deliveries, releases and expiries of cashback, and the "
        "periodic jobs (procrastinate, every app's tasks.py). Runs until stopped; SIGTERM or "
        "SIGINT lets the jobs in flight finish first."
    )

    def handle(self, *args, **options):
        # The web side queues jobs on Django's connection; the worker listens and polls on a
        # connection pool of its own, on the same database: straight to PostgreSQL when
        # WORKER_DATABASE_URL is set (LISTEN needs a session a transaction pooler cannot give).
        connector = app.connector
        if not isinstance(connector, DjangoConnector):
            raise CommandError("The procrastinate app is expected on Django's connector.")
        worker_connector: BaseAsyncConnector
        if WORKER_ALIAS in settings.DATABASES:
            worker_connector = PsycopgConnector(kwargs=connector_params(WORKER_ALIAS))
        else:
            worker_connector = connector.get_worker_connector()
        with app.replace_connector(worker_connector):
            app.run_worker()

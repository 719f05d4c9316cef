from django.core.management.base import BaseCommand, CommandError
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector


class Command(BaseCommand):
    help = (
        "The background worker: webhook deliveries, releases and expiries of cashback, and the "
        "periodic jobs (procrastinate, every app's tasks.py). Runs until stopped; SIGTERM or "
        "SIGINT lets the jobs in flight finish first."
    )

    def handle(self, *args, **options):
        # The web side queues jobs on Django's connection; the worker listens and polls on a
        # connection pool of its own, on the same database.
        connector = app.connector
        if not isinstance(connector, DjangoConnector):
            raise CommandError("The procrastinate app is expected on Django's connector.")
        with app.replace_connector(connector.get_worker_connector()):
            app.run_worker()

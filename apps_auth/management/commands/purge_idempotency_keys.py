from datetime import timedelta

from django.core.management.base import CommandError

from apps_auth.idempotency import RETENTION, idempotency_purge
from core.commands import OperationsCommand


class Command(OperationsCommand):
    help = "Deletes Idempotency-Key records past their 24-hour retention."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--older-than-hours",
            type=float,
            default=RETENTION.total_seconds() / 3600,
            help="Age past which a key is deleted (default 24).",
        )

    def run(self, *, older_than_hours, **options):
        if older_than_hours < 0:
            raise CommandError("--older-than-hours must not be negative.")
        deleted = idempotency_purge(older_than=timedelta(hours=older_than_hours))
        return {"deleted": deleted}

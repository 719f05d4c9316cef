"""What every operations command shares: `--json` output and domain errors as CommandError."""

import argparse
from collections.abc import Callable
from datetime import UTC, datetime

import simplejson
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import DomainError


class OperationsCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        try:
            result = self.run(**options)
        except DomainError as exc:
            details = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in exc.details.items())
            raise CommandError(f"{exc.message} {details}".strip()) from None
        if options["json"]:
            self.stdout.write(simplejson.dumps(result, use_decimal=True, default=str))
        else:
            self.stdout.write(self.describe(result))

    # The command's operation: called with the parsed options, returns what it prints.
    run: Callable[..., dict]

    def describe(self, result: dict) -> str:
        return "\n".join(f"{key}: {value}" for key, value in result.items())


def instant_arg(value: str) -> datetime:
    """An ISO 8601 instant for `--as-of`; one without an offset is taken as UTC."""
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date and time.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed

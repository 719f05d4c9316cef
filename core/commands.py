"""What every operations command shares: `--json` output and domain errors as CommandError."""

from collections.abc import Callable

import simplejson
from django.core.management.base import BaseCommand, CommandError

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
